// The gateway's outbound connections, one per party it holds, made to follow what the duties want
// (duties.ts). Each party's changes run one after another: a connection of an older epoch is closed — and
// its close seen by the remote end — before one of the new epoch opens. Every connection sends the stand-in
// line protocol (gateway/stand-in.ts): a first line naming party, epoch and gateway, then heartbeats.

import { connect, type Socket } from 'node:net';
import type { Wanted } from './duties.ts';

export type ReportStatus = 'OPENED' | 'FAILED' | 'CLOSED';

export interface ConnectionsOptions {
  readonly gateway: string;
  /** A heartbeat line this often on every connection (ms). */
  readonly heartbeatMs: number;
  /** Opening (connect + the remote's OK) and an orderly close each get this long (ms). */
  readonly timeoutMs: number;
  readonly report: (party: string, epoch: number, status: ReportStatus, detail?: string) => void;
  /** Called before a socket event is handled (the gateway checks its lease there first). */
  readonly beforeEvent?: () => void;
}

interface Held {
  readonly epoch: number;
  readonly endpoint: string;
  readonly socket: Socket;
  readonly heartbeat: NodeJS.Timeout;
}

const splitEndpoint = (endpoint: string): { host: string; port: number } => {
  const at = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(endpoint.slice(at + 1)) };
};

export class Connections {
  private readonly held = new Map<string, Held>();
  private readonly chains = new Map<string, Promise<void>>();
  /** An epoch whose open failed is not retried until the duties change it. */
  private readonly failed = new Map<string, number>();
  private target: ReadonlyMap<string, Wanted> = new Map();

  constructor(private readonly options: ConnectionsOptions) {}

  /** The parties held open now, with their epochs. */
  get open(): Map<string, number> {
    return new Map([...this.held].map(([party, held]) => [party, held.epoch]));
  }

  /** Make the connections follow `want`; resolves once every party's change has run. */
  converge(want: ReadonlyMap<string, Wanted>): Promise<void> {
    this.target = want;
    const parties = new Set([...want.keys(), ...this.held.keys()]);
    return Promise.all([...parties].map((party) => this.schedule(party))).then(() => {});
  }

  /** Resolves once the changes queued for `party` have run. */
  settled(party: string): Promise<void> {
    return this.chains.get(party) ?? Promise.resolve();
  }

  /**
   * Close every connection now, without waiting for anything (the lease ran out, or the session is gone):
   * the sockets are destroyed at once, and each is reported CLOSED.
   */
  closeAllNow(): void {
    this.target = new Map();
    for (const [party, held] of this.held) {
      this.forget(party, held);
      held.socket.destroy();
      this.options.report(party, held.epoch, 'CLOSED');
    }
  }

  private schedule(party: string): Promise<void> {
    const chain = (this.chains.get(party) ?? Promise.resolve()).then(() => this.step(party));
    this.chains.set(party, chain);
    void chain.then(() => {
      if (this.chains.get(party) === chain) this.chains.delete(party);
    });
    return chain;
  }

  private async step(party: string): Promise<void> {
    const want = this.target.get(party);
    const held = this.held.get(party);
    if (held && held.epoch !== want?.epoch) {
      await this.closeOne(party, held);
      this.options.report(party, held.epoch, 'CLOSED');
    }
    if (!want || this.held.has(party) || this.failed.get(party) === want.epoch) return;
    const opened = await this.openOne(party, want);
    if (typeof opened === 'string') {
      this.failed.set(party, want.epoch);
      this.options.report(party, want.epoch, 'FAILED', opened);
      return;
    }
    if (this.target.get(party)?.epoch !== want.epoch) {
      // The duties moved on while it opened: never keep a connection they no longer want.
      opened.destroy();
      this.options.report(party, want.epoch, 'CLOSED');
      return;
    }
    this.failed.delete(party);
    const heartbeat = setInterval(() => opened.write('HB\n'), this.options.heartbeatMs);
    const record: Held = { epoch: want.epoch, endpoint: want.endpoint, socket: opened, heartbeat };
    this.held.set(party, record);
    opened.once('close', () => {
      this.options.beforeEvent?.();
      if (this.held.get(party) !== record) return;
      // The remote end closed it: the assignment is not served any more; the registry decides what next.
      this.forget(party, record);
      this.failed.set(party, record.epoch);
      this.options.report(party, record.epoch, 'FAILED', 'the remote end closed the connection');
    });
    this.options.report(party, want.epoch, 'OPENED');
  }

  private forget(party: string, held: Held): void {
    clearInterval(held.heartbeat);
    if (this.held.get(party) === held) this.held.delete(party);
  }

  /** Connect, send the first line, wait for OK: the socket, or why not. */
  private openOne(party: string, want: Wanted): Promise<Socket | string> {
    return new Promise((resolve) => {
      const { host, port } = splitEndpoint(want.endpoint);
      const socket = connect({ host, port });
      socket.setNoDelay(true);
      socket.setEncoding('utf8');
      let answer = '';
      const fail = (why: string) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(why);
      };
      const timer = setTimeout(
        () => fail(`no OK from ${want.endpoint} within ${this.options.timeoutMs} ms`),
        this.options.timeoutMs,
      );
      socket.once('connect', () =>
        socket.write(`${JSON.stringify({ party, epoch: want.epoch, gateway: this.options.gateway })}\n`),
      );
      const onData = (chunk: string) => {
        answer += chunk;
        const newline = answer.indexOf('\n');
        if (newline < 0) {
          if (answer.length > 512) fail(`${want.endpoint} answered a line longer than 512 bytes`);
          return;
        }
        socket.off('data', onData);
        const line = answer.slice(0, newline);
        if (line !== 'OK') {
          fail(`${want.endpoint} refused: ${line.slice(0, 200)}`);
          return;
        }
        clearTimeout(timer);
        socket.off('error', onError);
        socket.off('close', onClose);
        socket.on('error', () => {}); // a later reset is a close
        resolve(socket);
      };
      const onError = (error: Error) => fail(`${want.endpoint}: ${error.message}`);
      const onClose = () => fail(`${want.endpoint} closed the connection before OK`);
      socket.on('data', onData);
      socket.once('error', onError);
      socket.once('close', onClose);
    });
  }

  /** An orderly close: FIN, then wait until the remote end's FIN is back (it has seen ours), or time out. */
  private closeOne(party: string, held: Held): Promise<void> {
    this.forget(party, held);
    return new Promise((resolve) => {
      if (held.socket.destroyed) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        held.socket.destroy();
        resolve();
      }, this.options.timeoutMs);
      held.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      held.socket.end();
    });
  }
}
