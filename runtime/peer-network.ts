// One TCP connection per pair of members. The lower id dials, the higher accepts. Before anything else is
// read, each side proves it holds the cluster's secret (an HMAC challenge over HELLO:
// runtime/wire/peer-handshake.ts) and names itself and the cluster's member list, so a stranger, a member
// of another cluster, or one configured differently is refused with a reason, and never replaces a live
// connection. A connection that does not complete the handshake within limits.handshakeTimeoutMs is
// closed. After it, every frame is checked (runtime/wire/peer-frames.ts); a bad one closes the connection
// and never reaches the consensus module. A lost connection is redialled with backoff; messages for a peer
// that is not connected are dropped (Raft retries on its own schedule).

import type { PeerMessage } from '../actors/consensus/types.ts';
import { backoffDelay, type RandomState, seedRandom } from '../machines/random.ts';
import type { MemberConfig } from './config.ts';
import { formatMembersString } from './config.ts';
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
  /** This member refused a connection or a frame from it (operator-relevant: logged at warn). */
  readonly onRefused?: (reason: string, remote: string) => void;
  /** The redial backoff's first step (default 50 ms) and its cap (default 1000 ms). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

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
  private readonly clusterMembers: string;
  private stopped = false;

  constructor(private readonly options: PeerNetworkOptions) {
    this.clusterMembers = formatMembersString(options.members);
    this.redials = new RedialSchedule(
      options.self.id,
      options.backoffBaseMs ?? 50,
      options.backoffMaxMs ?? 1000,
    );
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
    for (const connection of this.connections.values()) connection.close('member shutting down');
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

  /** Refuse a connection: tell the other side why, close it, and report it. */
  private refuse(connection: FramedConnection, reason: string): void {
    const text = `refused by member ${this.options.self.id}: ${reason}`;
    this.options.onRefused?.(text, connection.remote);
    connection.close(text);
  }

  /** The acceptor's side: HELLO (answered with this member's HELLO and proof), then PROOF, then messages. */
  private accept(connection: FramedConnection): void {
    const self = this.options.self.id;
    const own = newNonce();
    let peer: number | null = null;
    let challenge: Uint8Array | null = null;
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
        this.refuse(connection, proof);
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
    } catch {
      this.retry(member);
      return;
    }
    if (this.stopped) {
      connection.close('member shutting down');
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
        this.refuse(connection, problem ?? 'bad HELLO');
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
      this.options.onPeerChange?.(member.id, false, reason);
      this.retry(member);
    });
  }

  private retry(member: MemberConfig): void {
    this.scheduleDial(member, this.redials.next(member.id));
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
    const message =
      kind === PeerKind.CONSENSUS
        ? parseConsensusMessage(body, this.options.frameLimits)
        : `expected a consensus message (kind ${PeerKind.CONSENSUS}), got kind ${kind}`;
    if (typeof message === 'string') {
      const reason = `bad message from peer ${peer}: ${message}`;
      this.options.onRefused?.(reason, connection.remote);
      connection.close(reason);
      return;
    }
    this.options.onMessage(peer, message);
  }
}
