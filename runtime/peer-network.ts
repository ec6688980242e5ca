// One TCP connection per pair of members. The lower id dials, the higher accepts. Before anything else is
// read, each side proves it holds the cluster's secret (an HMAC challenge over HELLO:
// runtime/wire/peer-handshake.ts) and names itself and the cluster's member list, so a stranger, a member
// of another cluster, or one configured differently is refused with a reason, and never replaces a live
// connection. A connection that does not complete the handshake within limits.handshakeTimeoutMs is
// closed. After it, every frame is checked (runtime/wire/peer-frames.ts); a bad one closes the connection
// and never reaches the consensus module. A lost connection is redialled with backoff; messages for a peer
// that is not connected are dropped (Raft retries on its own schedule). What an operator should hear of —
// a peer unreachable, a handshake refused or failed, a bad or too-large frame, a connection lost — goes
// to `warn`, at most once per peer (or address) and kind per `warnEveryMs`, with a count of those held back.

import type { PeerMessage } from '../actors/consensus/types.ts';
import { backoffDelay, type RandomState, seedRandom } from '../machines/random.ts';
import type { MemberConfig } from './config.ts';
import { formatMembersString } from './config.ts';
import { WarningLimiter } from './warning-limiter.ts';
import {
  type Hello,
  type PeerFrameLimits,
  PeerKind,
  parseConsensusMessage,
  parseHello,
  parseProof,
  toWire,
} from './wire/peer-frames.ts';
import { newNonce, signProof, verifyProof } from './wire/peer-handshake.ts';
import { dial, type FramedConnection, type Limit, TcpListener } from './wire/transport.ts';

export { PeerKind } from './wire/peer-frames.ts';

export interface PeerNetworkOptions {
  readonly self: MemberConfig;
  readonly members: readonly MemberConfig[];
  /** The cluster's peer secrets: the first signs, any verifies (config.ts: peerSecrets). */
  readonly secrets: readonly Uint8Array[];
  /** The largest peer frame (config.ts: maxPeerFrameBytes). */
  readonly maxFrameBytes: number;
  readonly frameLimits: PeerFrameLimits;
  readonly handshakeTimeoutMs: Limit;
  /** Handshakes in progress at once, in all and from one address. */
  readonly maxPendingConnections: Limit;
  readonly maxPendingPerAddress: Limit;
  /** A checked consensus message arrived from an authenticated peer. */
  readonly onMessage: (from: number, message: PeerMessage) => void;
  /** A peer connected, disconnected, or refused the handshake, with the reason. */
  readonly onPeerChange?: (peer: number, connected: boolean, reason: string) => void;
  /** This member refused a connection or a frame from it (every one; `warn` has them rate-limited). */
  readonly onRefused?: (reason: string, remote: string) => void;
  /** An operator-relevant peer problem, rate-limited (pino's `log.warn` fits): see PeerWarningFields. */
  readonly warn?: (fields: PeerWarningFields, message: string) => void;
  /** Warnings of one kind about one peer or address: at most one per this many ms (default 30 s). */
  readonly warnEveryMs?: number;
  /**
   * A peer is not warned of as unreachable for this long (default 10 s) after this member starts, while
   * it has not been seen yet (members of a cluster start one after another), and after it stopped
   * gracefully (a restart).
   */
  readonly startGraceMs?: number;
  /** The redial backoff's first step (default 50 ms) and its cap (default 1000 ms). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

export interface PeerWarningFields {
  /** The peer's member id, when known (a dialled peer, or one that introduced itself). */
  readonly peer?: number;
  /** The other side's address:port. */
  readonly remote?: string;
  /** Warnings of this kind held back since the last one logged (absent when none). */
  readonly suppressed?: number;
}

/** Why a connection is closed when the same peer's newer one is adopted (not a problem). */
const REPLACED = 'replaced by a newer connection';
/** Why a member closes its connections when it stops (a peer's graceful stop is not a problem). */
const SHUTTING_DOWN = 'member shutting down';

/** The default interval between two warnings of one kind about one peer. */
export const PEER_WARN_EVERY_MS = 30_000;
/** The default time after start (or a peer's graceful stop) in which it is not warned of as unreachable. */
export const PEER_START_GRACE_MS = 10_000;

/** `host:port` without the port: strangers are counted per address, not per connection. */
const addressOf = (remote: string): string => remote.slice(0, Math.max(0, remote.lastIndexOf(':')));

/**
 * When to redial each peer: machines/random.ts's backoffDelay (exponential, equal jitter, capped),
 * counted per peer and reset once a handshake completes. The generator is seeded with the member's
 * own id, so members that lost the same peer redial it at different moments, not in lockstep.
 */
export class RedialSchedule {
  private readonly attempts = new Map<number, number>();
  private random: RandomState;

  constructor(
    seed: number,
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {
    this.random = seedRandom(seed);
  }

  /** The delay before the next dial of `peer`, counting this failure. */
  next(peer: number): number {
    const attempt = this.attempts.get(peer) ?? 0;
    const [delay, random] = backoffDelay(attempt, this.baseMs, this.maxMs, this.random);
    this.random = random;
    this.attempts.set(peer, attempt + 1);
    return delay;
  }

  /** A handshake with `peer` completed: its next failure starts from the first step again. */
  reset(peer: number): void {
    this.attempts.delete(peer);
  }
}

export class PeerNetwork {
  private readonly listener: TcpListener;
  private readonly connections = new Map<number, FramedConnection>();
  private readonly dialTimers = new Map<number, NodeJS.Timeout>();
  private readonly redials: RedialSchedule;
  private readonly warnings: WarningLimiter;
  /** Until when (performance.now()) a peer is not warned of as unreachable: see startGraceMs. */
  private readonly quietUntil = new Map<number, number>();
  /** Connections this member closed with a refusal (already warned of). */
  private readonly refused = new WeakSet<FramedConnection>();
  private readonly clusterMembers: string;
  private stopped = false;

  constructor(private readonly options: PeerNetworkOptions) {
    this.clusterMembers = formatMembersString(options.members);
    this.redials = new RedialSchedule(
      options.self.id,
      options.backoffBaseMs ?? 50,
      options.backoffMaxMs ?? 1000,
    );
    this.warnings = new WarningLimiter(options.warnEveryMs ?? PEER_WARN_EVERY_MS);
    this.listener = new TcpListener(
      {
        host: options.self.host,
        port: options.self.peerPort,
        maxConnections: options.maxPendingConnections,
        maxConnectionsPerAddress: options.maxPendingPerAddress,
        handshakeTimeoutMs: options.handshakeTimeoutMs,
        pendingOnly: true,
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
    for (const member of this.options.members) this.quietFor(member.id);
    await this.listener.start();
    for (const member of this.options.members) {
      if (member.id > this.options.self.id) this.scheduleDial(member, 0);
    }
  }

  /** Send a consensus message; false if the peer is not connected (the message is dropped). */
  send(to: number, message: PeerMessage): boolean {
    const connection = this.connections.get(to);
    return connection ? connection.send(PeerKind.CONSENSUS, toWire(message)) : false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.dialTimers.values()) clearTimeout(timer);
    this.dialTimers.clear();
    for (const connection of this.connections.values()) connection.close(SHUTTING_DOWN);
    this.connections.clear();
    await this.listener.stop();
  }

  /** Check who a HELLO claims to be; null if acceptable, else a reason. */
  private checkHello(hello: Hello): string | null {
    if (hello.memberId === this.options.self.id) return `member id ${hello.memberId} is this member's own id`;
    if (!this.options.members.some((m) => m.id === hello.memberId)) {
      return `member ${hello.memberId} is not in this cluster's configuration`;
    }
    if (hello.members !== this.clusterMembers) {
      return `member ${hello.memberId} is configured with members "${hello.members}" but this member has "${this.clusterMembers}"; give every member the same configuration`;
    }
    return null;
  }

  /** Do not warn of `peer` as unreachable for startGraceMs from now. */
  private quietFor(peer: number): void {
    this.quietUntil.set(peer, performance.now() + (this.options.startGraceMs ?? PEER_START_GRACE_MS));
  }

  /** Warn of `message` unless one of kind `key` was logged within warnEveryMs (then it is counted). */
  private warning(key: string, fields: PeerWarningFields, message: string): void {
    if (this.options.warn === undefined || this.stopped) return;
    const held = this.warnings.admit(key);
    if (held === null) return;
    this.options.warn(
      held > 0 ? { ...fields, suppressed: held } : fields,
      held > 0 ? `${message} (and ${held} more like it since the last warning)` : message,
    );
  }

  /** Refuse a connection: tell the other side why, close it, and report it. */
  private refuse(connection: FramedConnection, reason: string, peer?: number): void {
    const text = `refused by member ${this.options.self.id}: ${reason}`;
    this.options.onRefused?.(text, connection.remote);
    this.warning(
      `refused ${peer ?? addressOf(connection.remote)}`,
      { ...(peer === undefined ? {} : { peer }), remote: connection.remote },
      `peer connection refused: ${text}`,
    );
    this.refused.add(connection);
    connection.close(text);
  }

  /** The acceptor's side: HELLO (answered with this member's HELLO and proof), then PROOF, then messages. */
  private accept(connection: FramedConnection): void {
    const self = this.options.self.id;
    const own = newNonce();
    let peer: number | null = null;
    let challenge: Uint8Array | null = null;
    connection.once('close', (reason) => {
      if (connection.established || this.refused.has(connection)) return;
      this.warning(
        `handshake ${peer ?? addressOf(connection.remote)}`,
        { ...(peer === null ? {} : { peer }), remote: connection.remote },
        `peer connection from ${connection.remote} closed before its handshake completed: ${reason}`,
      );
    });
    connection.on('frame', (kind, body) => {
      if (peer !== null && connection.established) {
        this.deliver(peer, connection, kind, body);
        return;
      }
      if (challenge === null) {
        const hello = parseHello(kind, body);
        const problem =
          typeof hello === 'string'
            ? hello
            : (this.checkHello(hello) ??
              (hello.memberId > self
                ? `member ${hello.memberId} has a higher id: it is dialled by lower ids, and does not dial them`
                : null));
        if (problem !== null || typeof hello === 'string') {
          this.refuse(connection, problem ?? 'bad HELLO');
          return;
        }
        peer = hello.memberId;
        challenge = hello.nonce;
        const proof = signProof(this.options.secrets, {
          role: 'accept',
          from: self,
          to: peer,
          members: this.clusterMembers,
          challenge,
          own,
        });
        connection.send(PeerKind.HELLO, { memberId: self, members: this.clusterMembers, nonce: own, proof });
        return;
      }
      const proof = parseProof(kind, body);
      if (typeof proof === 'string') {
        this.refuse(connection, proof, peer ?? undefined);
        return;
      }
      const claimed = peer as number;
      const input = {
        role: 'dial',
        from: claimed,
        to: self,
        members: this.clusterMembers,
        challenge: own,
        own: challenge,
      } as const;
      if (!verifyProof(this.options.secrets, input, proof)) {
        this.refuse(
          connection,
          `member ${claimed} did not prove it holds the cluster secret; give every member the same peerAuthentication secrets`,
          claimed,
        );
        return;
      }
      connection.establish();
      connection.name = `peer ${claimed}`;
      this.adopt(claimed, connection);
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

  /** The dialer's side: HELLO with a challenge, check the acceptor's HELLO and proof, answer with PROOF. */
  private async dialPeer(member: MemberConfig): Promise<void> {
    if (this.stopped || this.connections.has(member.id)) return;
    const self = this.options.self.id;
    let connection: FramedConnection;
    try {
      connection = await dial(member.host, member.peerPort, {
        maxFrameBytes: this.options.maxFrameBytes,
        name: `peer ${member.id}`,
        timeoutMs: 1000,
      });
    } catch (error) {
      if (performance.now() >= (this.quietUntil.get(member.id) ?? 0))
        this.warning(
          `unreachable ${member.id}`,
          { peer: member.id, remote: `${member.host}:${member.peerPort}` },
          `peer ${member.id} at ${member.host}:${member.peerPort} is unreachable (${error instanceof Error ? error.message : String(error)}); redialling with backoff`,
        );
      this.retry(member);
      return;
    }
    if (this.stopped) {
      connection.close(SHUTTING_DOWN);
      return;
    }
    const own = newNonce();
    const timeout = this.options.handshakeTimeoutMs;
    const timer = setTimeout(() => {
      if (!connection.established) {
        connection.close(
          `member ${member.id} did not complete the handshake within ${timeout.value} ms; raise ${timeout.setting} if the network is that slow`,
        );
      }
    }, timeout.value);
    connection.send(PeerKind.HELLO, { memberId: self, members: this.clusterMembers, nonce: own });
    connection.on('frame', (kind, body) => {
      if (connection.established) {
        this.deliver(member.id, connection, kind, body);
        return;
      }
      const hello = parseHello(kind, body);
      const problem =
        typeof hello === 'string'
          ? hello
          : (this.checkHello(hello) ??
            (hello.memberId !== member.id
              ? `expected member ${member.id}, it says ${hello.memberId}`
              : null) ??
            (hello.proof === undefined ||
            !verifyProof(
              this.options.secrets,
              {
                role: 'accept',
                from: member.id,
                to: self,
                members: this.clusterMembers,
                challenge: own,
                own: hello.nonce,
              },
              hello.proof,
            )
              ? `member ${member.id} did not prove it holds the cluster secret; give every member the same peerAuthentication secrets`
              : null));
      if (problem !== null || typeof hello === 'string') {
        this.refuse(connection, problem ?? 'bad HELLO', member.id);
        return;
      }
      clearTimeout(timer);
      const proof = signProof(this.options.secrets, {
        role: 'dial',
        from: self,
        to: member.id,
        members: this.clusterMembers,
        challenge: hello.nonce,
        own,
      });
      connection.send(PeerKind.PROOF, { proof });
      connection.establish();
      this.redials.reset(member.id);
      this.adopt(member.id, connection);
    });
    connection.once('close', (reason) => {
      clearTimeout(timer);
      if (connection.established) return;
      if (!this.refused.has(connection)) {
        this.warning(
          `handshake ${member.id}`,
          { peer: member.id, remote: connection.remote },
          `connection to peer ${member.id} closed before its handshake completed: ${reason}`,
        );
      }
      this.options.onPeerChange?.(member.id, false, reason);
      this.retry(member);
    });
  }

  private retry(member: MemberConfig): void {
    this.scheduleDial(member, this.redials.next(member.id));
  }

  private adopt(peer: number, connection: FramedConnection): void {
    const previous = this.connections.get(peer);
    if (previous && previous !== connection) previous.close(REPLACED);
    this.connections.set(peer, connection);
    this.quietUntil.delete(peer);
    this.options.onPeerChange?.(peer, true, 'connected');
    connection.once('close', (reason) => {
      if (this.connections.get(peer) === connection) this.connections.delete(peer);
      const stopped = reason.endsWith(`: ${SHUTTING_DOWN}`);
      if (stopped) this.quietFor(peer);
      if (!stopped && reason !== REPLACED && !this.refused.has(connection)) {
        this.warning(
          `lost ${peer}`,
          { peer, remote: connection.remote },
          `connection to peer ${peer} lost: ${reason}`,
        );
      }
      this.options.onPeerChange?.(peer, false, reason);
      const member = this.options.members.find((m) => m.id === peer);
      if (member && peer > this.options.self.id) this.retry(member);
    });
  }

  private deliver(peer: number, connection: FramedConnection, kind: number, body: unknown): void {
    const message =
      kind === PeerKind.CONSENSUS
        ? parseConsensusMessage(body, this.options.frameLimits)
        : `expected a consensus message (kind ${PeerKind.CONSENSUS}), got kind ${kind}`;
    if (typeof message === 'string') {
      const reason = `bad message from peer ${peer}: ${message}`;
      this.options.onRefused?.(reason, connection.remote);
      this.warning(
        `bad message ${peer}`,
        { peer, remote: connection.remote },
        `peer connection refused: ${reason}`,
      );
      this.refused.add(connection);
      connection.close(reason);
      return;
    }
    this.options.onMessage(peer, message);
  }
}
