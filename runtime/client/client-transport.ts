// The client library's seam to the outside world: how it reaches a member, and how it tells time. The
// client (client.ts) runs its connection statechart and its command bookkeeping against this interface
// only, so the same code runs over real sockets and timers (`socketTransport`, the default) and over the
// simulator's seeded network and virtual clock (runtime/sim/client-network.ts).

import { performance } from 'node:perf_hooks';
import { dial, type FramedConnection } from '../wire/transport.ts';

/** An open connection to a member: frames out, and a close. */
export interface ClientLink {
  /** Send one frame; false when the connection can no longer carry it. */
  send(kind: number, body: unknown): boolean;
  close(reason: string): void;
}

/** What a dial reports, always later than the `dial` call itself (never re-entrantly). */
export interface DialEvents {
  /** The connection is open. */
  opened(link: ClientLink): void;
  /** The member could not be reached. */
  failed(): void;
  /** A frame from the member, on an opened link. */
  frame(kind: number, body: unknown): void;
  /** An opened link closed (by the member, the network, or `close`). */
  closed(): void;
}

export interface DialOptions {
  readonly maxFrameBytes: number;
  /** For messages about this connection. */
  readonly name: string;
  readonly timeoutMs: number;
}

/** A timer started with `after` or `every`. */
export interface ClientTimer {
  cancel(): void;
}

export interface ClientTransport {
  /** Monotonic time, ms. */
  now(): number;
  /** Run once after `ms`. */
  after(ms: number, run: () => void): ClientTimer;
  /** Run every `ms`. */
  every(ms: number, run: () => void): ClientTimer;
  /** Open a connection to a member's client endpoint (`host:port`). */
  dial(endpoint: string, options: DialOptions, events: DialEvents): void;
}

/** Real TCP connections (length-prefixed msgpack frames) and the process's timers. */
export const socketTransport: ClientTransport = {
  now: () => performance.now(),
  after(ms, run) {
    const timer = setTimeout(run, ms);
    return { cancel: () => clearTimeout(timer) };
  },
  every(ms, run) {
    const timer = setInterval(run, ms);
    return { cancel: () => clearInterval(timer) };
  },
  dial(endpoint, options, events) {
    const at = endpoint.lastIndexOf(':');
    const host = endpoint.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(endpoint.slice(at + 1));
    dial(host, port, options).then(
      (connection: FramedConnection) => {
        connection.on('frame', (kind, body) => events.frame(kind, body));
        connection.on('close', () => events.closed());
        events.opened(connection);
      },
      () => events.failed(),
    );
  },
};
