// A TCP relay between a gateway and one cluster member, for the specs: `cut()` resets every relayed
// connection on both sides (RST, as a failing link or a restarted middlebox would) and refuses new ones until
// `heal()`. The member stays up and sees the close; the gateway cannot reach it meanwhile. `silence()` is a
// partition instead: no byte is carried either way and nothing is closed (no FIN, no RST); new connections
// hang. `heal()` then resets what was held (by then both ends have given up on it) and relays again.

import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class Relay {
  private readonly pairs = new Set<[Socket, Socket]>();
  private cutOff = false;
  private silent = false;
  /** Connections accepted while silent: held open, never relayed. */
  private readonly hung = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
  ) {}

  /** Relay from a new local port to `target` (host:port). */
  static async start(target: string): Promise<Relay> {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.split(':').pop())];
    let relay: Relay | undefined;
    const server = createServer((inbound) => relay?.accept(inbound, host, port));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('relay has no port');
    relay = new Relay(server, `127.0.0.1:${address.port}`);
    return relay;
  }

  private accept(inbound: Socket, host: string, port: number): void {
    if (this.cutOff) {
      inbound.resetAndDestroy();
      return;
    }
    if (this.silent) {
      this.hung.add(inbound);
      inbound.on('error', () => {});
      inbound.on('close', () => this.hung.delete(inbound));
      return;
    }
    const outbound = createConnection({ host, port });
    const pair: [Socket, Socket] = [inbound, outbound];
    this.pairs.add(pair);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const end = (socket: Socket) => {
      // In a partition the far side hears nothing of it: heal() resets what is left.
      if (this.silent) {
        socket.destroy();
        return;
      }
      this.pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    for (const socket of pair) {
      socket.on('error', () => end(socket));
      socket.on('close', () => end(socket));
    }
  }

  /** Reset every relayed connection on both sides and refuse new ones. */
  cut(): void {
    this.cutOff = true;
    for (const [inbound, outbound] of this.pairs) {
      inbound.resetAndDestroy();
      outbound.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** A partition: carry nothing either way, close nothing; new connections hang. */
  silence(): void {
    this.silent = true;
    for (const [inbound, outbound] of this.pairs) {
      inbound.unpipe(outbound);
      outbound.unpipe(inbound);
      inbound.pause();
      outbound.pause();
    }
  }

  heal(): void {
    if (this.silent) {
      this.silent = false;
      for (const socket of this.hung) socket.resetAndDestroy();
      this.hung.clear();
      for (const [inbound, outbound] of this.pairs) {
        inbound.resetAndDestroy();
        outbound.resetAndDestroy();
      }
      this.pairs.clear();
    }
    this.cutOff = false;
  }

  async close(): Promise<void> {
    this.heal();
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
