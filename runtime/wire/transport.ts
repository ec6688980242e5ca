// TCP transport: framed connections (frame-codec.ts) between peers and with clients.
//
// - `FramedConnection` wraps one socket: frames in (validated by the decoder), frames out (corked per
//   event-loop turn so a burst of messages becomes one write), and a clear close reason. A bad frame
//   closes that connection only; it never throws out of the member.
// - `PeerNetwork` (runtime/peer-network.ts, over this transport) keeps one connection per pair of
//   members: the member with the lower id dials, the other accepts; the dialer redials with backoff after
//   a loss. The first frame each way is HELLO naming the member, so an acceptor knows who is talking.
//   Messages to an unreachable peer are dropped: the consensus protocol tolerates loss and retries on its
//   own schedule.
// - `TcpListener` (TCP, or a Unix socket for the admin channel) accepts connections within its limits —
//   in all, per remote address, a handshake timeout, an idle timeout — and refuses or closes the rest with
//   a reason naming the setting that raises the limit (failure case R2).

import { EventEmitter } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, type FrameError } from './frame-codec.ts';

/** Frame kinds shared by every connection. Peer kinds are in peer-frames.ts, client kinds in client-frames.ts. */
export const TransportKind = {
  /** { reason }: the sender is about to close the connection and says why. */
  GOODBYE: 0,
} as const;

export interface FramedConnectionOptions {
  readonly maxFrameBytes: number;
  /** Bytes queued for a slow reader before the connection is dropped instead of growing memory. */
  readonly maxQueuedBytes?: number;
  /** A name for logs and errors: `peer 2`, `client 127.0.0.1:53122`. */
  readonly name: string;
}

export interface FramedConnectionEvents {
  frame: [kind: number, body: unknown];
  close: [reason: string];
}

export class FramedConnection extends EventEmitter<FramedConnectionEvents> {
  private readonly decoder: FrameDecoder;
  private readonly maxQueuedBytes: number;
  private corked = false;
  private closedReason: string | null = null;
  private isEstablished = false;
  /** When the connection was made (performance.now()); handshake timeouts count from it. */
  readonly openedAt = performance.now();
  /** When the last complete frame arrived (performance.now()); idle timeouts count from it. */
  lastFrameAt = performance.now();
  name: string;

  constructor(
    readonly socket: Socket,
    options: FramedConnectionOptions,
  ) {
    super();
    this.name = options.name;
    this.decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.maxQueuedBytes = options.maxQueuedBytes ?? 64 * 1024 * 1024;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      this.finish(`${error.code ?? 'socket error'}: ${error.message}`),
    );
    socket.on('close', () => this.finish('connection closed by the other side'));
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** True once the owner has accepted the other side's handshake (see `establish`). */
  get established(): boolean {
    return this.isEstablished;
  }

  /** The handshake is complete (a peer proved the secret, a client connected): the handshake timeout ends. */
  establish(): void {
    this.isEstablished = true;
  }

  get remote(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  /** Queue one frame. Returns false (and sends nothing) if the connection is closed. */
  send(kind: number, body: unknown): boolean {
    if (this.closedReason !== null) return false;
    if (this.socket.writableLength > this.maxQueuedBytes) {
      this.close(`peer is not reading: more than ${this.maxQueuedBytes} bytes queued`);
      return false;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(encodeFrame(kind, body));
    return true;
  }

  /** Tell the other side why, then close. */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    if (!this.socket.destroyed && this.socket.writable) {
      try {
        this.socket.end(encodeFrame(TransportKind.GOODBYE, { reason }));
      } catch {
        // The socket went away underneath us: closing anyway.
      }
      // Do not wait forever for a reader that has gone away.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
    this.finish(reason);
  }

  private onData(chunk: Buffer): void {
    if (this.closedReason !== null) return;
    const { frames, error } = this.decoder.push(chunk);
    if (frames.length > 0) this.lastFrameAt = performance.now();
    for (const frame of frames) {
      if (this.closedReason !== null) return;
      if (frame.kind === TransportKind.GOODBYE) {
        const reason = (frame.body as { reason?: unknown })?.reason;
        this.socket.destroy();
        this.finish(`closed by ${this.name}: ${typeof reason === 'string' ? reason : 'no reason given'}`);
        return;
      }
      this.emit('frame', frame.kind, frame.body);
    }
    if (error) this.refuse(error);
  }

  private refuse(error: FrameError): void {
    this.close(`bad frame from ${this.name} (${error.code}): ${error.message}`);
  }

  private finish(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.emit('close', reason);
  }
}

/** A limit and the configuration setting that raises it, named in every refusal. */
export interface Limit {
  readonly value: number;
  readonly setting: string;
}

export interface ListenerOptions {
  /** TCP host and port, or `path` for a Unix socket. */
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly maxFrameBytes: number;
  readonly name: string;
  /** Connections at once (with `pendingOnly`, only those still in their handshake). */
  readonly maxConnections: Limit;
  /** Connections at once from one remote address (with `pendingOnly`, only those in their handshake). */
  readonly maxConnectionsPerAddress?: Limit;
  /** A connection not established (`FramedConnection.establish`) within this time is closed. */
  readonly handshakeTimeoutMs?: Limit;
  /** An established connection that delivers no complete frame for this long is closed. */
  readonly idleTimeoutMs?: Limit;
  /**
   * Count only connections still in their handshake against the limits: the peer port, whose established
   * connections are one per member, authenticated, and must never be refused because of strangers.
   */
  readonly pendingOnly?: boolean;
}

/** A listener that hands framed connections to `onConnection`, within its limits (R2). */
export class TcpListener {
  private server: Server | null = null;
  private readonly live = new Set<FramedConnection>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: ListenerOptions,
    private readonly onConnection: (connection: FramedConnection) => void,
  ) {}

  get connectionCount(): number {
    return this.live.size;
  }

  private get where(): string {
    return this.options.path ?? `${this.options.host}:${this.options.port}`;
  }

  /** Why a new connection from `address` is refused, or null if it is within the limits. */
  private refusal(address: string): string | null {
    const { maxConnections, maxConnectionsPerAddress, pendingOnly } = this.options;
    let all = 0;
    let fromAddress = 0;
    for (const connection of this.live) {
      if (pendingOnly && connection.established) continue;
      all++;
      if (connection.socket.remoteAddress === address) fromAddress++;
    }
    const what = pendingOnly ? 'connections in their handshake' : 'connections';
    if (all >= maxConnections.value) {
      return `too many ${what}: ${this.options.name} accepts at most ${maxConnections.value}; retry later or raise ${maxConnections.setting}`;
    }
    if (maxConnectionsPerAddress && address !== '' && fromAddress >= maxConnectionsPerAddress.value) {
      return `too many ${what} from ${address}: ${this.options.name} accepts at most ${maxConnectionsPerAddress.value} per address; close some or raise ${maxConnectionsPerAddress.setting}`;
    }
    return null;
  }

  /** Close connections past their handshake or idle timeout. */
  private sweep(): void {
    const { handshakeTimeoutMs, idleTimeoutMs } = this.options;
    const now = performance.now();
    for (const connection of this.live) {
      if (!connection.established) {
        if (handshakeTimeoutMs && now - connection.openedAt > handshakeTimeoutMs.value) {
          connection.close(
            `handshake not completed within ${handshakeTimeoutMs.value} ms; raise ${handshakeTimeoutMs.setting} if the network is that slow`,
          );
        }
      } else if (idleTimeoutMs && now - connection.lastFrameAt > idleTimeoutMs.value) {
        connection.close(
          `idle: no complete frame for ${idleTimeoutMs.value} ms; send keepalives or raise ${idleTimeoutMs.setting}`,
        );
      }
    }
  }

  async start(): Promise<void> {
    const server = createServer((socket) => {
      const connection = new FramedConnection(socket, {
        maxFrameBytes: this.options.maxFrameBytes,
        name: `${this.options.name} connection${socket.remoteAddress ? ` from ${socket.remoteAddress}:${socket.remotePort}` : ''}`,
      });
      const refused = this.refusal(socket.remoteAddress ?? '');
      if (refused !== null) {
        connection.close(refused);
        return;
      }
      this.live.add(connection);
      connection.once('close', () => this.live.delete(connection));
      this.onConnection(connection);
    });
    this.server = server;
    const timeouts = [this.options.handshakeTimeoutMs, this.options.idleTimeoutMs].filter(
      (t) => t !== undefined,
    );
    if (timeouts.length > 0) {
      const every = Math.max(5, Math.min(1000, ...timeouts.map((t) => t.value / 4)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          new Error(
            `${this.options.name}: cannot listen on ${this.where} (${error.code ?? error.message})` +
              (error.code === 'EADDRINUSE'
                ? ': another process holds the port; stop it or choose another port'
                : ''),
          ),
        );
      };
      server.once('error', onError);
      const listening = () => {
        server.off('error', onError);
        resolve();
      };
      if (this.options.path !== undefined) server.listen(this.options.path, listening);
      else server.listen(this.options.port, this.options.host, listening);
    });
  }

  async stop(reason = 'member shutting down'): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const connection of this.live) connection.close(reason);
    this.live.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Dial `host:port` and resolve with a framed connection, or reject with a reason. */
export const dial = (
  host: string,
  port: number,
  options: FramedConnectionOptions & { readonly timeoutMs?: number },
): Promise<FramedConnection> =>
  new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${host}:${port} timed out`));
    }, options.timeoutMs ?? 2000);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(`cannot connect to ${host}:${port} (${error.code ?? error.message})`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new FramedConnection(socket, options));
    });
  });
