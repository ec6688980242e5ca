// One TCP connection per pair of members. The lower id dials, the higher accepts; each side's first frame
// is HELLO naming itself and the cluster's member list, so a connection from a stranger, or from a member
// configured with a different cluster, is refused with a reason. A lost connection is redialled with
// backoff; messages for a peer that is not connected are dropped (Raft retries on its own schedule).

import type { EntryKind, LogEntry } from '../machines/log-entry.ts';
import type { MemberConfig } from './config.ts';
import { formatMembersString } from './config.ts';
import { dial, type FramedConnection, TcpListener } from './transport.ts';

export const PeerKind = {
  /** { memberId, members } — the first frame each way. */
  HELLO: 1,
  /** A consensus message: a plain object with a string `type`. */
  CONSENSUS: 2,
} as const;

export interface PeerNetworkOptions {
  readonly self: MemberConfig;
  readonly members: readonly MemberConfig[];
  readonly maxFrameBytes: number;
  /** A consensus message arrived from a peer (already checked to be an object with a string `type`). */
  readonly onMessage: (from: number, message: { type: string }) => void;
  /** A peer connected, disconnected, or refused the handshake, with the reason. */
  readonly onPeerChange?: (peer: number, connected: boolean, reason: string) => void;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class PeerNetwork {
  private readonly listener: TcpListener;
  private readonly connections = new Map<number, FramedConnection>();
  private readonly dialTimers = new Map<number, NodeJS.Timeout>();
  private readonly backoff = new Map<number, number>();
  private readonly clusterMembers: string;
  private stopped = false;

  constructor(private readonly options: PeerNetworkOptions) {
    this.clusterMembers = formatMembersString(options.members);
    this.listener = new TcpListener(
      {
        host: options.self.host,
        port: options.self.peerPort,
        maxConnections: options.members.length * 2,
        maxFrameBytes: options.maxFrameBytes,
        name: `member ${options.self.id} peer port`,
      },
      (connection) => this.accept(connection),
    );
  }

  /** Peers with a live, introduced connection. */
  connectedPeers(): number[] {
    return [...this.connections.keys()].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    await this.listener.start();
    for (const member of this.options.members) {
      if (member.id > this.options.self.id) this.scheduleDial(member, 0);
    }
  }

  /** Send a consensus message; false if the peer is not connected (the message is dropped). */
  send(to: number, message: object): boolean {
    const connection = this.connections.get(to);
    return connection ? connection.send(PeerKind.CONSENSUS, toWire(message)) : false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.dialTimers.values()) clearTimeout(timer);
    this.dialTimers.clear();
    for (const connection of this.connections.values()) connection.close('member shutting down');
    this.connections.clear();
    await this.listener.stop();
  }

  private hello(): object {
    return { memberId: this.options.self.id, members: this.clusterMembers };
  }

  /** Check a HELLO; the peer's id if acceptable, else a reason. */
  private checkHello(body: unknown): number | string {
    const hello = body as { memberId?: unknown; members?: unknown } | null;
    if (!hello || typeof hello.memberId !== 'number') return 'first frame must be HELLO naming the member';
    if (hello.memberId === this.options.self.id) return `member id ${hello.memberId} is this member's own id`;
    if (!this.options.members.some((m) => m.id === hello.memberId)) {
      return `member ${hello.memberId} is not in this cluster's configuration`;
    }
    if (hello.members !== this.clusterMembers) {
      return `member ${hello.memberId} is configured with members "${String(hello.members)}" but this member has "${this.clusterMembers}"; give every member the same configuration`;
    }
    return hello.memberId;
  }

  private accept(connection: FramedConnection): void {
    let peer: number | null = null;
    connection.on('frame', (kind, body) => {
      if (peer === null) {
        const checked = kind === PeerKind.HELLO ? this.checkHello(body) : 'first frame must be HELLO';
        if (typeof checked === 'string') {
          connection.close(`refused by member ${this.options.self.id}: ${checked}`);
          return;
        }
        if (checked > this.options.self.id) {
          connection.close(
            `member ${checked} has a higher id: it is dialled by lower ids, and does not dial them`,
          );
          return;
        }
        peer = checked;
        connection.name = `peer ${peer}`;
        connection.send(PeerKind.HELLO, this.hello());
        this.adopt(peer, connection);
        return;
      }
      this.deliver(peer, connection, kind, body);
    });
  }

  private scheduleDial(member: MemberConfig, delayMs: number): void {
    if (this.stopped || this.dialTimers.has(member.id)) return;
    const timer = setTimeout(() => {
      this.dialTimers.delete(member.id);
      void this.dialPeer(member);
    }, delayMs);
    this.dialTimers.set(member.id, timer);
  }

  private async dialPeer(member: MemberConfig): Promise<void> {
    if (this.stopped || this.connections.has(member.id)) return;
    let connection: FramedConnection;
    try {
      connection = await dial(member.host, member.peerPort, {
        maxFrameBytes: this.options.maxFrameBytes,
        name: `peer ${member.id}`,
        timeoutMs: 1000,
      });
    } catch {
      this.retry(member);
      return;
    }
    if (this.stopped) {
      connection.close('member shutting down');
      return;
    }
    let introduced = false;
    connection.send(PeerKind.HELLO, this.hello());
    connection.on('frame', (kind, body) => {
      if (!introduced) {
        const checked = kind === PeerKind.HELLO ? this.checkHello(body) : 'first frame must be HELLO';
        if (checked !== member.id) {
          connection.close(
            `refused by member ${this.options.self.id}: ${typeof checked === 'string' ? checked : `expected member ${member.id}`}`,
          );
          return;
        }
        introduced = true;
        this.backoff.delete(member.id);
        this.adopt(member.id, connection);
        return;
      }
      this.deliver(member.id, connection, kind, body);
    });
    connection.once('close', (reason) => {
      if (introduced) return;
      this.options.onPeerChange?.(member.id, false, reason);
      this.retry(member);
    });
  }

  private retry(member: MemberConfig): void {
    const min = this.options.minBackoffMs ?? 50;
    const max = this.options.maxBackoffMs ?? 1000;
    const next = Math.min(max, (this.backoff.get(member.id) ?? min / 2) * 2);
    this.backoff.set(member.id, next);
    this.scheduleDial(member, next);
  }

  private adopt(peer: number, connection: FramedConnection): void {
    const previous = this.connections.get(peer);
    if (previous && previous !== connection) previous.close('replaced by a newer connection');
    this.connections.set(peer, connection);
    this.options.onPeerChange?.(peer, true, 'connected');
    connection.once('close', (reason) => {
      if (this.connections.get(peer) === connection) this.connections.delete(peer);
      this.options.onPeerChange?.(peer, false, reason);
      const member = this.options.members.find((m) => m.id === peer);
      if (member && peer > this.options.self.id) this.retry(member);
    });
  }

  private deliver(peer: number, connection: FramedConnection, kind: number, body: unknown): void {
    if (
      kind !== PeerKind.CONSENSUS ||
      typeof body !== 'object' ||
      body === null ||
      typeof (body as { type?: unknown }).type !== 'string'
    ) {
      connection.close(
        `bad message from peer ${peer}: expected a consensus message (kind ${PeerKind.CONSENSUS} with a string type)`,
      );
      return;
    }
    const message = fromWire(body as { type: string });
    if (typeof message === 'string') {
      connection.close(`bad message from peer ${peer}: ${message}`);
      return;
    }
    this.options.onMessage(peer, message);
  }
}

// APPEND on the wire (protocol version 2): `entries` is one flat array, ENTRY_FIELDS values per entry
// (index, term, timestamp, kind, payload), instead of one msgpack map per entry. That saves the five key
// strings per entry in the frame, and most of the leader's pack and the followers' unpack work on the
// replication path. Every other consensus message goes as it is.
const ENTRY_FIELDS = 5;

const toWire = (message: object): object => {
  const append = message as { type?: unknown; entries?: readonly LogEntry[] };
  if (append.type !== 'APPEND' || !Array.isArray(append.entries)) return message;
  const entries = append.entries;
  const flat: unknown[] = new Array(entries.length * ENTRY_FIELDS);
  for (let i = 0, j = 0; i < entries.length; i++, j += ENTRY_FIELDS) {
    const entry = entries[i];
    flat[j] = entry.index;
    flat[j + 1] = entry.term;
    flat[j + 2] = entry.timestamp;
    flat[j + 3] = entry.kind;
    flat[j + 4] = entry.payload;
  }
  return { ...message, entries: flat };
};

/** The consensus message a peer sent, with APPEND's flat entries rebuilt; or what is wrong with it. */
const fromWire = (message: { type: string }): { type: string } | string => {
  const flat = (message as { entries?: unknown }).entries;
  if (message.type !== 'APPEND' || flat === undefined) return message;
  if (!Array.isArray(flat) || flat.length % ENTRY_FIELDS !== 0) {
    return `APPEND entries must be a flat array of ${ENTRY_FIELDS} fields per entry (index, term, timestamp, kind, payload)`;
  }
  const entries: LogEntry[] = new Array(flat.length / ENTRY_FIELDS);
  for (let i = 0, j = 0; j < flat.length; i++, j += ENTRY_FIELDS) {
    const index = flat[j];
    const term = flat[j + 1];
    const timestamp = flat[j + 2];
    const kind = flat[j + 3];
    const payload = flat[j + 4];
    if (
      typeof index !== 'number' ||
      typeof term !== 'number' ||
      typeof timestamp !== 'number' ||
      typeof kind !== 'number' ||
      !(payload instanceof Uint8Array)
    ) {
      return `APPEND entry ${i} must be numbers index, term, timestamp, kind and a binary payload`;
    }
    entries[i] = { index, term, timestamp, kind: kind as EntryKind, payload };
  }
  return { ...message, entries } as { type: string };
};
