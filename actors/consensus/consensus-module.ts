// The consensus module: everything a cluster member decides, as one pure, deterministic object with one
// input type and one ordered effect stream (module-types.ts). It composes
//
//   - the consensus node (node.ts): log replication, the election, the role, the module state;
//   - the session manager (actors/sessions): one client-session statechart per client;
//   - back-pressure (R1, R5): past `maxUnappliedEntries` appended but unapplied, commands are answered BUSY;
//   - the service edge: the service's own checks of a command body, before the log;
//   - the snapshot policy: every so many entries or bytes applied, the member snapshots itself;
//   - the services' leadership and timer clock (LEAD_SERVICES, SERVICE_TICK);
//   - storage failure (D1, D2): a member whose storage fails stops taking part (a leader is replaced by the
//     others) and asks to be rebuilt from its store once the storage works again.
//
// A client command goes: CLIENT (SESSION_MESSAGE) → session manager (FORWARD) → back-pressure and the
// service edge → node (CLIENT_COMMAND) → APPEND + SEND effects; once a quorum flushed it, APPLY → the
// shell's services → SERVICES_REPLAYED with their replies → CLIENT_REPLY. A session open goes: CLIENT
// (CONNECT) → session manager (APPEND of SESSION_OPEN) → node (PROPOSE) → its index back to the session
// manager, all inside one call; the OK follows when the entry commits (APPLY).
//
// The effects of one call come out ordered as etcd's Ready is: every persist effect (APPEND, TRUNCATE,
// PURGE, SAVE_NODE_STATE, INSTALL_SNAPSHOT) precedes every effect that leaves by the network (SEND to a
// peer, anything to a client); within each group, emission order is kept. Durability itself is the
// node's to wait for (APPENDED, NODE_STATE_SAVED): a vote or an append response is only emitted once
// what it depends on is durable.
//
// No clock, no randomness of its own (the node's nomination draw is seeded, resume tokens and challenges
// come from the injected authenticator and token source), no I/O.

import type { LeaderView } from '../../machines/client-session.ts';
import type { LogEntry } from '../log/log-entry.ts';
import { EntryKind } from '../log/log-entry.ts';
import { SessionManager } from '../sessions/session-manager.ts';
import type { SessionEffect, SessionInput, SessionView } from '../sessions/session-types.ts';
import type {
  CommandAdmission,
  ConsensusModuleConfig,
  ModuleEffect,
  ModuleInput,
  ModuleRecovery,
  ServiceReply,
} from './module-types.ts';
import { SEND_EFFECTS } from './module-types.ts';
import { ConsensusNode } from './node.ts';
import { decodeModulePart, encodeModulePart, snapshotParts } from './snapshot-parts.ts';
import type { ConsensusEffect, ConsensusInput } from './types.ts';

export * from './module-types.ts';

const admitAll = (body: Uint8Array): CommandAdmission => ({ ok: true, body });

export class ConsensusModule {
  /** The consensus node, as a read-only view (role, term, log positions): feed it only through the module. */
  readonly node: ConsensusNode;
  private sessions: SessionManager;
  private readonly admit: (body: Uint8Array) => CommandAdmission;
  private readonly retryAfterMs: number;
  /** The latest monotonic time seen (TICK, or a client event's). */
  private now = 0;
  /** Payload bytes applied since the last snapshot (the policy's `everyBytes`). */
  private bytesSinceSnapshot = 0;
  /** The policy asked for a snapshot; it is requested once every APPLY of the node's batch is out. */
  private snapshotDue = false;
  private nodeEffectsDepth = 0;
  /** Why the storage failed, while it has (the module is fenced off the cluster). */
  private storageFailure: string | null = null;
  /** Node inputs gathered in this call, handed over together (one replication round per batch). */
  private batch: ConsensusInput[] = [];
  private out: ModuleEffect[] = [];

  constructor(
    private readonly config: ConsensusModuleConfig,
    recovery: ModuleRecovery,
  ) {
    if (config.sessions.memberId !== config.consensus.memberId) {
      throw new RangeError(
        `sessions.memberId ${config.sessions.memberId} differs from consensus.memberId ${config.consensus.memberId}`,
      );
    }
    this.node = new ConsensusNode(config.consensus, recovery.persisted);
    this.sessions = this.newSessions(recovery.sessions);
    this.admit = config.admit ?? admitAll;
    this.retryAfterMs = config.retryAfterMs ?? 50;
  }

  // ----------------------------------------------------------------------------------------------
  // Read-only view
  // ----------------------------------------------------------------------------------------------

  /** Sessions open or opening on this member. */
  get activeSessions(): number {
    return this.sessions.activeSessions;
  }
  /** Committed sessions with their state here. */
  listSessions(): SessionView[] {
    return this.sessions.list();
  }
  /** When a session last showed activity here (the module's monotonic time), or null: see SessionManager. */
  sessionActivityAt(sessionId: number): number | null {
    return this.sessions.lastActivityAt(sessionId);
  }
  /** Why this member's storage failed, while it is fenced off the cluster; null when it works. */
  get storageFailed(): string | null {
    return this.storageFailure;
  }
  /** The role the cluster sees: a member fenced by a storage failure leads nothing. */
  get role(): string {
    return this.storageFailure === null ? this.node.role : 'FOLLOWER';
  }

  // ----------------------------------------------------------------------------------------------
  // Inputs
  // ----------------------------------------------------------------------------------------------

  handle(input: ModuleInput): ModuleEffect[] {
    return this.handleAll([input]);
  }

  /** Handle inputs in arrival order; the node gets them batched (one replication round for the lot). */
  handleAll(inputs: readonly ModuleInput[]): ModuleEffect[] {
    this.out = [];
    for (const input of inputs) {
      if (this.storageFailure !== null) this.whileFenced(input);
      else this.dispatch(input);
    }
    this.runNode();
    const effects = this.out;
    this.out = [];
    return persistBeforeSend(effects);
  }

  private dispatch(input: ModuleInput): void {
    switch (input.type) {
      case 'CLIENT':
        this.now = Math.max(this.now, input.input.now);
        this.onSessionEffects(this.sessions.handle(input.input));
        return;
      case 'TICK':
        this.now = Math.max(this.now, input.now);
        this.batch.push(input);
        this.runNode();
        if (input.clusterTime !== undefined) {
          // Cluster time never runs backwards for the services: at least the last entry's timestamp.
          const last = this.node.entryAt(this.node.lastIndex)?.timestamp ?? 0;
          this.out.push({ type: 'SERVICE_TICK', clusterTime: Math.max(input.clusterTime, last) });
        }
        this.onSessionEffects(this.sessions.handle({ type: 'TICK', now: this.now }));
        return;
      case 'SERVICES_REPLAYED':
        // The node's replay states wait for the services (LEADER_REPLAY, FOLLOWER_REPLAY).
        this.batch.push({ type: 'SERVICES_REPLAYED', index: input.index });
        this.onServicesReplayed(input.replies ?? []);
        return;
      case 'SNAPSHOT_TAKEN':
        this.batch.push({
          type: 'SNAPSHOT_TAKEN',
          snapshot: { index: input.index, term: input.term, data: input.data },
        });
        return;
      case 'STORAGE_FAILED':
        this.fence(input.reason);
        return;
      case 'STORAGE_RECOVERED':
        return; // not fenced: nothing to rejoin
      default:
        this.batch.push(input);
    }
  }

  /**
   * Fenced off by a storage failure: the node gets nothing (it sends no heartbeat, acknowledgement or
   * vote, so the others elect without this member), clients are told there is no leader here, and the
   * shell is asked to rebuild the module from its store once the storage works again.
   */
  private whileFenced(input: ModuleInput): void {
    switch (input.type) {
      case 'CLIENT':
        this.now = Math.max(this.now, input.input.now);
        this.onSessionEffects(this.sessions.handle(input.input));
        return;
      case 'STORAGE_RECOVERED':
        this.out.push({ type: 'REJOIN' });
        return;
      default:
        return;
    }
  }

  private fence(reason: string): void {
    this.storageFailure = reason;
    this.batch = [];
    this.out.push({ type: 'STORAGE_FENCED', reason });
    // The role the cluster sees (and `role` reports) is no longer the node's: say so like any role change.
    const { role, term } = this.node;
    if (role !== 'FOLLOWER')
      this.out.push({ type: 'ROLE_CHANGE', from: role, to: 'FOLLOWER', term, event: 'STORAGE_FAILED' });
    this.onSessionEffects(this.sessions.handle({ type: 'ROLE_CHANGED', now: this.now, leader: UNKNOWN }));
  }

  /** Hand the batched inputs to the node and carry its effects through the module. */
  private runNode(): void {
    if (this.batch.length === 0) return;
    const inputs = this.batch;
    this.batch = [];
    const effects = inputs.length === 1 ? this.node.handle(inputs[0]) : this.node.handleAll(inputs);
    this.onNodeEffects(effects);
  }

  // ----------------------------------------------------------------------------------------------
  // The node's effects
  // ----------------------------------------------------------------------------------------------

  private onNodeEffects(effects: readonly ConsensusEffect[]): void {
    this.nodeEffectsDepth++;
    try {
      this.carryNodeEffects(effects);
    } finally {
      this.nodeEffectsDepth--;
    }
    if (this.nodeEffectsDepth === 0 && this.snapshotDue) {
      // Only now: the node takes the snapshot at its applied position, which must be the last entry of
      // the APPLY effects already out, so the services' snapshot (taken after them, in order) stands for
      // exactly that index. Requested in the middle of a batch, the snapshot was recorded at the node's
      // applied index while the services had applied only the first APPLY of the batch, and the log was
      // purged past entries no snapshot held: acknowledged writes lost after a restart (bench cluster).
      this.snapshotDue = false;
      this.onNodeEffects(this.node.handle({ type: 'REQUEST_SNAPSHOT' }));
    }
  }

  private carryNodeEffects(effects: readonly ConsensusEffect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'APPLY':
          this.onApply(effect.entries);
          break;
        case 'TAKE_SNAPSHOT': {
          const { index, term } = effect;
          this.out.push({
            type: 'TAKE_SNAPSHOT',
            index,
            term,
            timestamp: this.node.entryAt(index)?.timestamp ?? 0,
            // The session table is fed at APPLY, so here it stands exactly for `index`.
            module: encodeModulePart(this.sessions.toSnapshot()),
          });
          break;
        }
        case 'INSTALL_SNAPSHOT':
          this.out.push(effect);
          this.sessions = this.newSessions(decodeModulePart(snapshotParts(effect.snapshot.data).module));
          this.bytesSinceSnapshot = 0;
          this.roleChanged();
          break;
        case 'REJECT':
          this.reject(effect.sessionId, effect.correlationId, effect.reason, effect.leaderId);
          break;
        case 'ROLE_CHANGE':
          this.out.push(effect);
          this.roleChanged();
          break;
        case 'ELECTION_STATE_CHANGE':
          this.out.push(effect);
          if (effect.to === 'LEADER_READY') this.out.push({ type: 'LEAD_SERVICES', term: effect.term });
          // Every step of an election can change what clients must be told: a follower that lost its
          // leader (CANVASS) answers NO_LEADER, never redirects a client to the leader it lost (issue 10).
          this.roleChanged();
          break;
        default:
          this.out.push(effect);
      }
    }
  }

  /** Committed entries: the session table learns its entries now; the services get them in order. */
  private onApply(entries: readonly LogEntry[]): void {
    for (const entry of entries) {
      this.bytesSinceSnapshot += entry.payload.length;
      if (entry.kind === EntryKind.SESSION_OPEN || entry.kind === EntryKind.SESSION_CLOSE) {
        this.onSessionEffects(this.sessions.handle({ type: 'COMMITTED', now: this.now, entry }));
      }
    }
    // Only the ready leader answers clients: a follower's services need not build replies.
    this.out.push({ type: 'APPLY', entries, replies: this.node.isReadyLeader });
    this.snapshotByPolicy();
  }

  /** The snapshot policy: every `everyEntries` entries or `everyBytes` payload bytes applied. */
  private snapshotByPolicy(): void {
    const { everyEntries, everyBytes } = this.config.snapshotPolicy;
    const byEntries =
      everyEntries !== null && this.node.appliedIndex - this.node.snapshotIndex >= everyEntries;
    const byBytes = everyBytes !== null && this.bytesSinceSnapshot >= everyBytes;
    if ((byEntries || byBytes) && this.node.moduleState === 'ACTIVE') {
      this.bytesSinceSnapshot = 0;
      // Requested when the node's effects are all carried (onNodeEffects); the node takes it at its
      // applied position (and ignores the request while one is being taken).
      this.snapshotDue = true;
    }
  }

  private onServicesReplayed(replies: readonly ServiceReply[]): void {
    if (!this.node.isReadyLeader) return; // only the leader answers clients
    for (const reply of replies) {
      const connectionId = this.sessions.connectionOf(reply.sessionId);
      if (connectionId === null) continue;
      if (reply.notify) {
        this.out.push({ type: 'CLIENT_NOTIFY', connectionId, payload: reply.payload });
        continue;
      }
      this.out.push({
        type: 'CLIENT_REPLY',
        connectionId,
        correlationId: reply.correlationId,
        payload: reply.payload,
        ...(reply.outcomeUnknown ? { outcomeUnknown: true as const } : {}),
      });
    }
  }

  private reject(sessionId: number, correlationId: number, reason: string, leaderId: number | null): void {
    const connectionId = this.sessions.connectionOf(sessionId);
    if (connectionId === null) return;
    if (reason === 'NOT_LEADER' && leaderId !== null && leaderId !== this.node.memberId) {
      const endpoint = this.config.clientEndpoints.get(leaderId);
      if (endpoint !== undefined) {
        this.out.push({
          type: 'CLIENT_EVENT',
          connectionId,
          event: { code: 'REDIRECT', leaderId, endpoint },
        });
        return;
      }
    }
    // Suspended, transferring or between leaders: the command was not taken; the client sends it again.
    this.busy(connectionId, correlationId, `not accepted: ${reason}`);
  }

  private busy(connectionId: number, correlationId: number, detail: string): void {
    this.out.push({
      type: 'CLIENT_BUSY',
      connectionId,
      correlationId,
      retryAfterMs: this.retryAfterMs,
      detail,
    });
  }

  private roleChanged(): void {
    this.onSessionEffects(
      this.sessions.handle({ type: 'ROLE_CHANGED', now: this.now, leader: this.leaderView() }),
    );
  }

  private leaderView(): LeaderView {
    const leaderId = this.node.leaderId;
    if (leaderId === null) return UNKNOWN;
    if (leaderId === this.node.memberId) return this.node.isReadyLeader ? { kind: 'SELF' } : UNKNOWN;
    const endpoint = this.config.clientEndpoints.get(leaderId);
    return endpoint === undefined ? UNKNOWN : { kind: 'OTHER', leaderId, endpoint };
  }

  // ----------------------------------------------------------------------------------------------
  // The session manager's effects
  // ----------------------------------------------------------------------------------------------

  private onSessionEffects(effects: readonly SessionEffect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'SEND':
          this.out.push({ type: 'CLIENT_EVENT', connectionId: effect.connectionId, event: effect.event });
          break;
        case 'CLOSE_CONNECTION':
          this.out.push(effect);
          break;
        case 'APPEND':
          this.proposeSessionEntry(effect.kind, effect.payload, effect.connectionId, effect.sessionId);
          break;
        case 'FORWARD':
          this.forward(effect);
          break;
      }
    }
  }

  /** A session entry goes to the node at once (after the inputs before it): its index is the session id. */
  private proposeSessionEntry(
    kind: EntryKind,
    payload: Uint8Array,
    connectionId: number | undefined,
    sessionId: number | undefined,
  ): void {
    this.runNode();
    for (const effect of this.node.handle({ type: 'PROPOSE', kind, payload })) {
      if (
        effect.type === 'PROPOSAL_REJECTED' &&
        kind === EntryKind.SESSION_CLOSE &&
        sessionId !== undefined
      ) {
        // Refused (a transfer under way, the cluster suspended): the session is open again, and the next
        // check closes it anew. Left CLOSING, it would never close: a gateway's name would stay taken.
        this.onSessionEffects(this.sessions.handle({ type: 'CLOSE_REFUSED', now: this.now, sessionId }));
        continue;
      }
      if (effect.type === 'PROPOSED' && kind === EntryKind.SESSION_OPEN && connectionId !== undefined) {
        const input: SessionInput = {
          type: 'OPEN_APPENDED',
          now: this.now,
          connectionId,
          index: effect.index,
        };
        this.onSessionEffects(this.sessions.handle(input));
      } else if (effect.type !== 'PROPOSED') {
        this.onNodeEffects([effect]);
      }
    }
  }

  /** A client's command from an open session: back-pressure, then the service edge, then the node. */
  private forward(effect: Extract<SessionEffect, { type: 'FORWARD' }>): void {
    const connectionId = this.sessions.connectionOf(effect.sessionId);
    // Back-pressure (R1, R5): past a bound of appended but unapplied entries, new input is answered BUSY
    // with a retry-after instead of growing the log and the queues without limit.
    const backlog = this.node.lastIndex - this.node.appliedIndex;
    const max = this.config.maxUnappliedEntries;
    if (backlog >= max) {
      if (connectionId !== null)
        this.busy(
          connectionId,
          effect.correlationId,
          `overloaded: ${backlog} entries appended and not yet applied (maxUnappliedEntries ${max})`,
        );
      return;
    }
    // The service edge: the service's own checks run here, before the log (a raw client skips the client
    // library's). A refusal is answered like a reply and never reaches the log.
    const admitted = this.admit(effect.body);
    if (!admitted.ok) {
      if (connectionId !== null)
        this.out.push({
          type: 'CLIENT_REPLY',
          connectionId,
          correlationId: effect.correlationId,
          payload: admitted.payload,
        });
      return;
    }
    this.batch.push({
      type: 'CLIENT_COMMAND',
      sessionId: effect.sessionId,
      correlationId: effect.correlationId,
      lowestAwaited: effect.lowestAwaited,
      payload: admitted.body,
    });
  }

  private newSessions(snapshot: ModuleRecovery['sessions']): SessionManager {
    const options = this.config.sessions;
    return snapshot ? SessionManager.fromSnapshot(snapshot, options) : new SessionManager(options);
  }
}

const UNKNOWN: LeaderView = { kind: 'UNKNOWN' };

/** Reorder one call's effects: everything else (persist effects among them), then the network sends; each in order. */
const persistBeforeSend = (effects: ModuleEffect[]): ModuleEffect[] => {
  let sawSend = false;
  for (const effect of effects) {
    if (SEND_EFFECTS.has(effect.type)) sawSend = true;
    else if (sawSend)
      return [
        ...effects.filter((e) => !SEND_EFFECTS.has(e.type)),
        ...effects.filter((e) => SEND_EFFECTS.has(e.type)),
      ];
  }
  return effects;
};
