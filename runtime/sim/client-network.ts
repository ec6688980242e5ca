// The simulated network between clients and members: the client library's ClientTransport
// (runtime/client/client-transport.ts) over the simulator's clock and event queue. A client dials a
// member by its endpoint (`m<id>:9000`); a connection carries msgpack-encoded frames in order, each after a
// network delay; a partition that cuts a client off a member loses what it sends there (the client's
// own silence detection then drops the connection and looks elsewhere); a member that crashes closes
// its connections (the client hears it a moment later), one that is paused or cut off goes silent.

import { pack, unpack } from 'msgpackr';
import type { ClientLink, ClientTimer, ClientTransport, DialEvents } from '../client/client-transport.ts';

/** The member side of one client connection, as a member shell sees it. */
export interface MemberEnd {
  /** Send a frame to the client. */
  send(kind: number, body: unknown): void;
  /** Close the connection from the member's side (the client is told). */
  close(reason: string): void;
}

/** What a simulated member offers its client port. */
export interface ClientPort {
  /** True while the member runs (a connection to a stopped member is refused). */
  readonly accepting: boolean;
  /** A new connection: the member's id for it. */
  accept(end: MemberEnd): number;
  frame(connectionId: number, kind: number, body: unknown): void;
  closed(connectionId: number): void;
}

/** What the client network needs from the simulation. */
export interface ClientNetworkHost {
  now(): number;
  /** One-way network delay, ms (drawn from the seeded generator). */
  delay(): number;
  /** Run `run` after `ms` of virtual time. */
  schedule(ms: number, run: () => void): void;
  /** Run `run` at the member after `ms`: deferred while it is paused, dropped if it restarts meanwhile. */
  scheduleAtMember(member: number, ms: number, run: () => void): void;
  port(member: number): ClientPort;
  /** Chance that a client's command is delivered once more, late (behind newer ones): a resend stuck in a queue. */
  lateResendRate(): number;
  chance(probability: number): boolean;
}

/** A member's client endpoint on the simulated network: `m<id>:9000`. */
export const endpointOf = (member: number): string => `m${member}:9000`;
const memberOf = (endpoint: string): number | null => {
  const match = /^m(\d+):9000$/.exec(endpoint);
  return match ? Number(match[1]) : null;
};

interface Connection {
  readonly client: number;
  readonly member: number;
  connectionId: number;
  /** Frames may be sent on it (neither side has closed it). */
  open: boolean;
  /** The client closed its end: nothing more reaches it. */
  clientGone: boolean;
  readonly events: DialEvents;
  /** Delivery times stay in order per direction (a TCP stream). */
  toMemberAt: number;
  toClientAt: number;
}

export class ClientNetwork {
  /** Client-to-member links cut (`client>member`): a partition can cut clients off too. */
  private readonly blocked = new Set<string>();
  /** Member-to-client directions that lose everything (`client>member`): requests arrive, replies do not. */
  private readonly muted = new Set<string>();
  private readonly connections = new Set<Connection>();

  constructor(private readonly host: ClientNetworkHost) {}

  block(client: number, member: number): void {
    this.blocked.add(`${client}>${member}`);
  }

  /** The member's frames to the client are lost from now on (its requests still arrive). */
  muteReplies(client: number, member: number): void {
    this.muted.add(`${client}>${member}`);
  }

  unblockAll(): void {
    this.blocked.clear();
    this.muted.clear();
  }

  private isCut(connection: Connection): boolean {
    return this.blocked.has(`${connection.client}>${connection.member}`);
  }

  /** A member stopped: its connections close; each client hears of it after a network delay. */
  memberStopped(member: number): void {
    for (const connection of [...this.connections]) {
      if (connection.member !== member) continue;
      this.closeFromMember(connection);
    }
  }

  /** The transport one client runs on. */
  transportFor(client: number): ClientTransport {
    const host = this.host;
    const timer = (ms: number, run: () => void, repeat: boolean): ClientTimer => {
      let live = true;
      const fire = (): void => {
        if (!live) return;
        if (repeat) host.schedule(ms, fire);
        else live = false;
        run();
      };
      host.schedule(ms, fire);
      return {
        cancel: () => {
          live = false;
        },
      };
    };
    return {
      now: () => host.now(),
      after: (ms, run) => timer(ms, run, false),
      every: (ms, run) => timer(ms, run, true),
      dial: (endpoint, options, events) => this.dial(client, endpoint, options.timeoutMs, events),
    };
  }

  private dial(client: number, endpoint: string, timeoutMs: number, events: DialEvents): void {
    const member = memberOf(endpoint);
    if (member === null) {
      this.host.schedule(0, () => events.failed());
      return;
    }
    const connection: Connection = {
      client,
      member,
      connectionId: -1,
      open: false,
      clientGone: false,
      events,
      toMemberAt: 0,
      toClientAt: 0,
    };
    if (this.isCut(connection)) {
      this.host.schedule(timeoutMs, () => events.failed()); // no answer: the connect times out
      return;
    }
    this.host.schedule(this.host.delay(), () => {
      const port = this.host.port(member);
      if (!port.accepting || this.isCut(connection)) {
        // Refused (nothing listens) comes back at once; a cut link answers nothing.
        this.host.schedule(this.isCut(connection) ? timeoutMs : this.host.delay(), () => events.failed());
        return;
      }
      connection.open = true;
      this.connections.add(connection);
      connection.connectionId = port.accept({
        send: (kind, body) => this.toClient(connection, kind, body),
        close: () => this.closeFromMember(connection),
      });
      this.host.schedule(this.host.delay(), () => {
        if (connection.open) events.opened(this.link(connection));
      });
    });
  }

  private link(connection: Connection): ClientLink {
    return {
      send: (kind, body) => {
        if (!connection.open) return false;
        const bytes = pack(body);
        this.toMember(connection, kind, bytes);
        const late = this.host.lateResendRate();
        if (late > 0 && (body as { type?: unknown }).type === 'SESSION_MESSAGE' && this.host.chance(late)) {
          // A copy stuck in a queue: it reaches the member behind the client's newer commands.
          const { member, connectionId } = connection;
          this.host.scheduleAtMember(member, 300 + this.host.delay() * 100, () => {
            if (connection.open) this.host.port(member).frame(connectionId, kind, unpack(bytes));
          });
        }
        return true;
      },
      close: () => {
        connection.clientGone = true;
        if (!connection.open) return;
        connection.open = false;
        this.connections.delete(connection);
        const { member, connectionId } = connection;
        this.host.scheduleAtMember(member, this.host.delay(), () =>
          this.host.port(member).closed(connectionId),
        );
      },
    };
  }

  /** A frame from the client, in order, after a delay; lost on a cut link. */
  private toMember(connection: Connection, kind: number, bytes: Uint8Array): void {
    if (this.isCut(connection)) return;
    const at = Math.max(this.host.now() + this.host.delay(), connection.toMemberAt);
    connection.toMemberAt = at;
    const deliver = (): void => {
      if (connection.open)
        this.host.port(connection.member).frame(connection.connectionId, kind, unpack(bytes));
    };
    this.host.scheduleAtMember(connection.member, at - this.host.now(), deliver);
  }

  private toClient(connection: Connection, kind: number, body: unknown): void {
    if (!connection.open || this.isCut(connection)) return;
    if (this.muted.has(`${connection.client}>${connection.member}`)) return;
    const bytes = pack(body);
    const at = Math.max(this.host.now() + this.host.delay(), connection.toClientAt);
    connection.toClientAt = at;
    this.host.schedule(at - this.host.now(), () => {
      if (!connection.clientGone) connection.events.frame(kind, unpack(bytes));
    });
  }

  /** The member's end closes: what it sent before still arrives, then the close. */
  private closeFromMember(connection: Connection): void {
    if (!connection.open) return;
    connection.open = false;
    this.connections.delete(connection);
    const at = Math.max(this.host.now() + this.host.delay(), connection.toClientAt);
    this.host.schedule(at - this.host.now(), () => {
      if (!connection.clientGone) connection.events.closed();
    });
  }
}
