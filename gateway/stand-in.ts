// The remote system's stand-in: a TCP server playing the trading counterparties a gateway connects to, for
// tests, the demo and `chorus gateway stand-in`. It records every connection per party with its epoch and
// gateway, and flags the moment a party has two live connections at once (what the gateways must never
// cause).
//
// The line protocol (UTF-8, one JSON value or word per line, each at most MAX_LINE_BYTES):
//   gateway → stand-in   {"party":"p1","epoch":3,"gateway":"g1"}   first line: who connects, for which party
//   stand-in → gateway   OK                                         the connection is recorded
//   gateway → stand-in   HB                                         a heartbeat, at least every livenessMs/3
// Like a real counterparty (FIX's HeartBtInt), the stand-in closes a connection silent for `livenessMs`:
// a gateway that is frozen (SIGSTOP) cannot close its sockets, so this is what ends them. For "never two
// live connections" to hold across a frozen gateway, livenessMs must be shorter than the cluster's session
// timeout (the earliest a lost gateway's parties move). A first line that does not parse closes the
// connection with the reason (recorded in `refused`); nothing a client sends can stop the server.

import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export const MAX_LINE_BYTES = 512;
/** Default liveness window: well under the cluster's shortest allowed session timeout (1.8 s with defaults). */
export const DEFAULT_LIVENESS_MS = 1000;

export interface StandInOptions {
  readonly host?: string;
  /** 0: any free port. */
  readonly port?: number;
  /** Close a connection that sent nothing for this long (ms); 0 turns it off. */
  readonly livenessMs?: number;
}

/** One connection, from its first line to its close. Times are ms on the stand-in's monotonic clock. */
export interface ConnectionRecord {
  readonly id: number;
  readonly party: string;
  readonly epoch: number;
  readonly gateway: string;
  readonly openedAt: number;
  closedAt: number | null;
  /** Who ended it: the gateway (or its process dying), or the stand-in (silent past livenessMs, shut down). */
  closedBy: 'gateway' | 'stand-in' | null;
}

/** Two live connections for one party at the same moment. */
export interface Overlap {
  readonly party: string;
  readonly at: number;
  /** The connection already live, then the new one. */
  readonly connections: readonly [ConnectionRecord, ConnectionRecord];
}

export interface Hello {
  readonly party: string;
  readonly epoch: number;
  readonly gateway: string;
}

/** The first line, checked: a party and gateway name of 1..200 characters, an epoch that is a whole number. */
export const parseHello = (line: string): Hello | { problem: string } => {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { problem: 'the first line is not JSON {"party","epoch","gateway"}' };
  }
  const v = value as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return { problem: 'the first line is not an object' };
  const name = (field: string) =>
    typeof v[field] === 'string' && (v[field] as string).length >= 1 && (v[field] as string).length <= 200;
  if (!name('party')) return { problem: 'party must be a string of 1 to 200 characters' };
  if (!name('gateway')) return { problem: 'gateway must be a string of 1 to 200 characters' };
  if (!(Number.isSafeInteger(v.epoch) && (v.epoch as number) >= 0)) {
    return { problem: 'epoch must be a whole number >= 0' };
  }
  return { party: v.party as string, epoch: v.epoch as number, gateway: v.gateway as string };
};

export class StandIn extends EventEmitter<{
  open: [ConnectionRecord];
  close: [ConnectionRecord];
  overlap: [Overlap];
  refused: [string];
}> {
  /** Every connection ever recorded, in the order they opened. */
  readonly records: ConnectionRecord[] = [];
  readonly overlaps: Overlap[] = [];
  /** Why connections were refused before they were recorded. */
  readonly refused: string[] = [];
  private readonly live = new Map<string, Set<ConnectionRecord>>();
  private readonly sockets = new Set<Socket>();
  private nextId = 1;

  private constructor(
    private readonly server: Server,
    readonly livenessMs: number,
  ) {
    super();
  }

  static async start(options: StandInOptions = {}): Promise<StandIn> {
    const livenessMs = options.livenessMs ?? DEFAULT_LIVENESS_MS;
    if (!(Number.isFinite(livenessMs) && livenessMs >= 0)) {
      throw new RangeError(`stand-in: livenessMs must be a number of ms >= 0 (0: off), got ${livenessMs}`);
    }
    const server = createServer();
    const standIn = new StandIn(server, livenessMs);
    server.on('connection', (socket) => standIn.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return standIn;
  }

  /** `host:port` to give the parties as their endpoint. */
  get endpoint(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('stand-in: not listening');
    return `${address.address}:${address.port}`;
  }

  /** The live connections of a party (of every party without one). */
  liveConnections(party?: string): ConnectionRecord[] {
    if (party !== undefined) return [...(this.live.get(party) ?? [])];
    return [...this.live.values()].flatMap((set) => [...set]);
  }

  /** The party → gateway holding its one live connection, for every party with a live connection. */
  holders(): Map<string, string> {
    const holders = new Map<string, string>();
    for (const [party, set] of this.live) for (const record of set) holders.set(party, record.gateway);
    return holders;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let buffered = '';
    let record: ConnectionRecord | null = null;
    let silence: NodeJS.Timeout | null = null;
    const heard = () => {
      if (this.livenessMs === 0) return;
      if (silence) clearTimeout(silence);
      silence = setTimeout(() => {
        if (record) this.end(record, 'stand-in');
        socket.destroy();
      }, this.livenessMs);
    };
    const refuse = (problem: string) => {
      this.refused.push(problem);
      this.emit('refused', problem);
      socket.end(`ERROR ${problem}\n`);
      socket.destroySoon();
    };
    heard();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      heard();
      if (record) return; // heartbeats (or anything else) after the first line only show it is alive
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (Buffer.byteLength(buffered) > MAX_LINE_BYTES)
          refuse(`first line longer than ${MAX_LINE_BYTES} bytes`);
        return;
      }
      const hello = parseHello(buffered.slice(0, newline));
      if ('problem' in hello) {
        refuse(hello.problem);
        return;
      }
      record = { id: this.nextId++, ...hello, openedAt: performance.now(), closedAt: null, closedBy: null };
      this.opened(record);
      socket.write('OK\n');
    });
    // The gateway's FIN ends the connection at once (before our own FIN goes back): a gateway that waits for
    // its socket's close before reporting CLOSED is then never counted live after it reported.
    socket.on('end', () => {
      if (record) this.end(record, 'gateway');
    });
    socket.on('error', () => {}); // a reset is a close like any other
    socket.on('close', () => {
      if (silence) clearTimeout(silence);
      this.sockets.delete(socket);
      if (record) this.end(record, 'gateway');
    });
  }

  private opened(record: ConnectionRecord): void {
    this.records.push(record);
    let set = this.live.get(record.party);
    if (!set) {
      set = new Set();
      this.live.set(record.party, set);
    }
    for (const other of set) {
      const overlap: Overlap = { party: record.party, at: record.openedAt, connections: [other, record] };
      this.overlaps.push(overlap);
      this.emit('overlap', overlap);
    }
    set.add(record);
    this.emit('open', record);
  }

  private end(record: ConnectionRecord, by: 'gateway' | 'stand-in'): void {
    if (record.closedAt !== null) return;
    record.closedAt = performance.now();
    record.closedBy = by;
    const set = this.live.get(record.party);
    set?.delete(record);
    if (set?.size === 0) this.live.delete(record.party);
    this.emit('close', record);
  }
}
