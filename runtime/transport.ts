// TCP transport: framed connections (runtime/codec.ts) between peers and with clients.
//
// - `FramedConnection` wraps one socket: frames in (validated by the decoder), frames out (corked per
//   event-loop turn so a burst of messages becomes one write), and a clear close reason. A bad frame
//   closes that connection only; it never throws out of the member.
// - `PeerNetwork` keeps one connection per pair of members: the member with the lower id dials, the
//   other accepts; the dialer redials with backoff after a loss. The first frame each way is HELLO naming
//   the member, so an acceptor knows who is talking. Messages to an unreachable peer are dropped: the
//   consensus protocol tolerates loss and retries on its own schedule.
// - `TcpListener` accepts connections up to a limit and refuses the rest with a reason (failure case R2).

import { EventEmitter } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, type FrameError } from './codec.ts';

/** Frame kinds shared by every connection. Peer and client kinds are in runtime/protocol.ts. */
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

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxConnections: number;
  readonly maxFrameBytes: number;
  readonly name: string;
}

/** A TCP listener that hands framed connections to `onConnection`, refusing those over the limit (R2). */
export class TcpListener {
  private server: Server | null = null;
  private readonly live = new Set<FramedConnection>();

  constructor(
    private readonly options: ListenerOptions,
    private readonly onConnection: (connection: FramedConnection) => void,
  ) {}

  get connectionCount(): number {
    return this.live.size;
  }

  async start(): Promise<void> {
    const server = createServer((socket) => {
      const connection = new FramedConnection(socket, {
        maxFrameBytes: this.options.maxFrameBytes,
        name: `${this.options.name} connection from ${socket.remoteAddress}:${socket.remotePort}`,
      });
      if (this.live.size >= this.options.maxConnections) {
        connection.close(
          `too many connections: ${this.options.name} accepts at most ${this.options.maxConnections}; retry later or raise the limit`,
        );
        return;
      }
      this.live.add(connection);
      connection.once('close', () => this.live.delete(connection));
      this.onConnection(connection);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          new Error(
            `${this.options.name}: cannot listen on ${this.options.host}:${this.options.port} (${error.code ?? error.message})` +
              (error.code === 'EADDRINUSE'
                ? ': another process holds the port; stop it or choose another port'
                : ''),
          ),
        );
      };
      server.once('error', onError);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
  }

  async stop(reason = 'member shutting down'): Promise<void> {
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
