// A TCP relay between a gateway and one cluster member, for the specs: `cut()` resets every relayed
// connection on both sides (RST, as a failing link or a restarted middlebox would) and refuses new ones until
// `heal()`. The member stays up and sees the close; the gateway cannot reach it meanwhile.

import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class Relay {
  private readonly pairs = new Set<[Socket, Socket]>();
  private cutOff = false;

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
    const outbound = createConnection({ host, port });
    const pair: [Socket, Socket] = [inbound, outbound];
    this.pairs.add(pair);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    const end = () => {
      this.pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    for (const socket of pair) {
      socket.on('error', end);
      socket.on('close', end);
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

  heal(): void {
    this.cutOff = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
