// One cluster member as a process: the pure consensus core and session manager driven by real time, TCP
// peers and clients, and the LMDB store. This file is the imperative shell: it feeds inputs to the core
// and carries out the effects the core returns, in order.
//
//   peers (TCP) ─┐                         ┌─ APPEND/TRUNCATE/PURGE → LogStore (group commit, flushed)
//   clients ─────┼→ ConsensusNode.handle ──┼─ SAVE_NODE_STATE → NodeStateStore (durable before acted on)
//   clock tick ──┘   SessionManager.handle ├─ SEND → PeerNetwork
//                                          ├─ APPLY → sessions + service → replies (leader only)
//                                          └─ TAKE/INSTALL_SNAPSHOT → SnapshotStore + RecordingLog

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pack, unpack } from 'msgpackr';
import type { Logger } from 'pino';
import {
  type ConsensusEffect,
  type ConsensusInput,
  ConsensusNode,
  type PersistedState,
  type SnapshotImage,
} from '../actors/consensus/index.ts';
import { snapshotParts } from '../actors/consensus/snapshot-parts.ts';
import {
  type Authenticator,
  allowAllAuthenticator,
  challengeResponseAuthenticator,
  sharedTokenAuthenticator,
} from '../actors/sessions/authenticators.ts';
import { parseClientRequest } from '../actors/sessions/requests.ts';
import {
  type SessionEffect,
  type SessionInput,
  SessionManager,
  type SessionManagerSnapshot,
} from '../actors/sessions/session-manager.ts';
import type { LeaderView } from '../machines/client-session.ts';
import { EntryKind, type LogEntry } from '../actors/log/log-entry.ts';
import { CONSENSUS_MODULE_SERVICE_ID, type MemberStore, openMemberStore } from '../persistence/index.ts';
import { ActorServiceHost } from './actor-runtime/actor-service-host.ts';
import { type AdminRequest, AdminServer } from './admin.ts';
import {
  type ClusterConfig,
  MAX_APPEND_BATCH_BYTES,
  maxCommandBytes,
  maxEntryPayloadBytes,
  maxPeerFrameBytes,
  memberById,
  peerSecrets,
} from './config.ts';
import {
  recordSnapshotSet,
  SERVICE_SNAPSHOT_ID,
  SnapshotSetWrites,
  StorageSequence,
  storeLeaderSnapshot,
} from './member-storage.ts';
import { PeerNetwork } from './peer-network.ts';
import { KvServiceHost, type LeaderContext, type ProposedEntry, type ServiceHost } from './service-host.ts';
import { ClientKind } from './wire/client-frames.ts';
import { type FramedConnection, type Limit, TcpListener } from './wire/transport.ts';

export { SERVICE_SNAPSHOT_ID } from './member-storage.ts';

const TICK_MS = 5;

export interface MemberOptions {
  readonly config: ClusterConfig;
  readonly memberId: number;
  readonly logger: Logger;
  readonly service?: ServiceHost;
  readonly authenticator?: Authenticator;
}

export interface MemberStatus {
  readonly memberId: number;
  readonly role: string;
  readonly electionState: string;
  readonly moduleState: string;
  readonly term: number;
  readonly leaderId: number | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly connectedPeers: readonly number[];
  readonly sessions: number;
}

export class Member {
  private readonly config: ClusterConfig;
  private readonly log: Logger;
  private readonly node: ConsensusNode;
  private sessions: SessionManager;
  private readonly peers: PeerNetwork;
  private readonly clients: TcpListener;
  private readonly connections = new Map<number, FramedConnection>();
  private nextConnectionId = 1;
  private ticker: NodeJS.Timeout | null = null;
  private readonly admin: AdminServer;
  private closed = false;
  /** Service steps (apply, snapshot, restore, leadership) run in order, one after another. */
  private chain: Promise<void> = Promise.resolve();
  /** Storage effects take effect in the order the consensus module emitted them (see member-storage.ts). */
  private readonly storage = new StorageSequence((error, what) => this.fail(error, what));
  /** Snapshot sets (taken here or installed from the leader) are recorded one at a time. */
  private readonly snapshotSets = new SnapshotSetWrites();
  /** Inputs gathered this event-loop turn, for one `handleAll` (see `input`). */
  private pendingInputs: ConsensusInput[] = [];
  private inputsScheduled = false;
  private failure: Error | null = null;
  /** Payload bytes applied since the last snapshot (for the snapshot policy's `everyBytes`). */
  private bytesSinceSnapshot = 0;

  private constructor(
    private readonly options: MemberOptions,
    private readonly store: MemberStore,
    private readonly service: ServiceHost,
    persisted: PersistedState,
    sessionSnapshot: SessionManagerSnapshot | null,
  ) {
    this.config = options.config;
    this.log = options.logger;
    const self = memberById(this.config, options.memberId);
    this.node = new ConsensusNode(
      {
        memberId: options.memberId,
        members: this.config.members.map((m) => m.id),
        timeouts: {
          electionTimeoutMs: this.config.electionTimeoutMs,
          heartbeatIntervalMs: this.config.leaderHeartbeatIntervalMs,
          heartbeatTimeoutMs: this.config.leaderHeartbeatTimeoutMs,
          startupCanvassTimeoutMs: this.config.startupCanvassTimeoutMs,
          electionStatusIntervalMs: this.config.electionStatusIntervalMs,
        },
        maxBatchBytes: MAX_APPEND_BATCH_BYTES,
        randomSeed: randomBytes(4).readUInt32LE(0),
      },
      persisted,
    );
    this.sessions = this.newSessionManager(sessionSnapshot);
    this.peers = new PeerNetwork({
      self,
      members: this.config.members,
      secrets: peerSecrets(this.config),
      maxFrameBytes: maxPeerFrameBytes(this.config),
      frameLimits: { maxEntryPayloadBytes: maxEntryPayloadBytes(this.config) },
      handshakeTimeoutMs: limit(this.config, 'handshakeTimeoutMs'),
      maxPendingConnections: limit(this.config, 'maxPendingPeerConnections'),
      maxPendingPerAddress: limit(this.config, 'maxConnectionsPerAddress'),
      onMessage: (from, message) => this.input({ type: 'PEER_MESSAGE', from, message }),
      onPeerChange: (peer, connected, reason) => {
        this.log.debug({ peer, connected, reason }, connected ? 'peer connected' : 'peer disconnected');
        if (!connected) this.input({ type: 'PEER_DISCONNECTED', peer });
      },
      onRefused: (reason, remote) => this.log.warn({ remote }, `peer connection refused: ${reason}`),
    });
    this.clients = new TcpListener(
      {
        host: self.host,
        port: self.clientPort,
        maxConnections: {
          value: maxClientConnections(this.config),
          setting: 'limits.maxClientConnections',
        },
        maxConnectionsPerAddress: limit(this.config, 'maxConnectionsPerAddress'),
        handshakeTimeoutMs: limit(this.config, 'handshakeTimeoutMs'),
        idleTimeoutMs: limit(this.config, 'idleTimeoutMs'),
        maxFrameBytes: this.config.maxFrameBytes,
        name: `member ${self.id} client port`,
      },
      (connection) => this.acceptClient(connection),
    );
    this.admin = new AdminServer(
      store.dir,
      {
        maxConnections: limit(this.config, 'maxAdminConnections'),
        handshakeTimeoutMs: limit(this.config, 'handshakeTimeoutMs'),
        idleTimeoutMs: limit(this.config, 'idleTimeoutMs'),
      },
      (request) => this.onAdmin(request),
    );
  }

  /** Open the store (the start-up scan refuses damaged data), recover, and start serving. */
  static async start(options: MemberOptions): Promise<Member> {
    const { config, memberId, logger } = options;
    memberById(config, memberId);
    peerSecrets(config); // a missing or readable-by-others secret file is refused before the store opens
    const dir = join(config.dir, `member-${memberId}`);
    // The hosted service: the one given, the actor services the configuration names (checked here, before
    // the store opens: a bad `services` module is refused naming the field), or the built-in KV service.
    const service: ServiceHost =
      options.service ??
      (config.services !== undefined
        ? await ActorServiceHost.open({ servicesModule: config.services, shards: config.workerShards })
        : new KvServiceHost());
    const store = await openMemberStore(dir, { mapSizeBytes: config.mapSizeBytes });
    try {
      const plan = store.recoveryPlan();
      for (const skipped of plan.skipped) {
        logger.warn(
          { setId: skipped.setId, logIndex: skipped.logIndex },
          `snapshot set skipped: ${skipped.reason}`,
        );
      }
      let snapshot: SnapshotImage | null = null;
      let sessionSnapshot: SessionManagerSnapshot | null = null;
      if (plan.snapshotSet) {
        const { logIndex, term } = plan.snapshotSet;
        const moduleEntry = plan.snapshots.find((s) => s.entry.serviceId === CONSENSUS_MODULE_SERVICE_ID);
        const serviceEntry = plan.snapshots.find((s) => s.entry.serviceId === SERVICE_SNAPSHOT_ID);
        const data = pack({
          module: moduleEntry ? store.snapshots.load(moduleEntry.entry.snapshotId) : null,
          service: serviceEntry ? store.snapshots.load(serviceEntry.entry.snapshotId) : null,
        });
        snapshot = { index: logIndex, term, data };
        const image = decodeSnapshotData(data);
        sessionSnapshot = image.sessions;
        await service.restore(image.service);
      } else {
        await service.restore(null);
      }
      const entries = plan.replayFrom <= plan.replayTo ? store.log.read(plan.replayFrom, plan.replayTo) : [];
      const persisted: PersistedState = {
        currentTerm: plan.nodeState.currentTerm,
        candidateTermId: plan.nodeState.candidateTermId,
        votedFor: plan.nodeState.votedFor,
        snapshot,
        entries,
      };
      logger.info(
        {
          dir,
          term: persisted.currentTerm,
          snapshotIndex: snapshot?.index ?? 0,
          lastIndex: store.log.lastIndex,
          scanned: store.startupReport?.entriesChecked,
        },
        'member store opened and validated',
      );
      const member = new Member(options, store, service, persisted, sessionSnapshot);
      await member.listen();
      return member;
    } catch (error) {
      await service.close?.();
      await store.close();
      throw error;
    }
  }

  status(): MemberStatus {
    return {
      memberId: this.options.memberId,
      role: this.node.role,
      electionState: this.node.electionState,
      moduleState: this.node.moduleState,
      term: this.node.term,
      leaderId: this.node.leaderId,
      commitIndex: this.node.commitIndex,
      appliedIndex: this.node.appliedIndex,
      lastIndex: this.node.lastIndex,
      connectedPeers: this.peers.connectedPeers(),
      sessions: this.sessions.activeSessions,
    };
  }

  /** Everything the cluster tool's `describe` shows. */
  describe(): object {
    const log = this.store.log;
    return {
      ...this.status(),
      dir: this.store.dir,
      pid: process.pid,
      snapshotIndex: this.node.snapshotIndex,
      members: this.config.members,
      log: { firstIndex: log.firstIndex, lastIndex: log.lastIndex, durableIndex: log.durableIndex },
      nodeState: this.store.nodeState.load(),
      snapshotSets: this.store.recordingLog
        .snapshotSets()
        .map((set) => ({ setId: set.setId, logIndex: set.logIndex, term: set.term, valid: set.valid })),
      terms: this.store.recordingLog.terms().slice(-5),
      clientSessions: this.sessions
        .list()
        .map(({ id, principal, state, connectionId }) => ({ id, principal, state, connectionId })),
    };
  }

  private async onAdmin(request: AdminRequest): Promise<unknown> {
    const waitFor = async (check: () => boolean, what: string, timeoutMs = 5000): Promise<void> => {
      const deadline = performance.now() + timeoutMs;
      while (!check()) {
        if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    switch (request.command) {
      case 'status':
        return this.describe();
      case 'snapshot': {
        const before = this.node.snapshotIndex;
        const at = this.node.appliedIndex;
        if (at <= before)
          return { snapshotIndex: before, taken: false, reason: 'nothing applied since the last snapshot' };
        this.input({ type: 'REQUEST_SNAPSHOT' });
        await waitFor(() => this.node.snapshotIndex >= at, `a snapshot at ${at}`);
        return { snapshotIndex: this.node.snapshotIndex, taken: true };
      }
      case 'suspend':
        this.input({ type: 'SUSPEND' });
        await waitFor(() => this.node.moduleState === 'SUSPENDED', 'suspend');
        return { moduleState: this.node.moduleState };
      case 'resume':
        this.input({ type: 'RESUME' });
        await waitFor(() => this.node.moduleState === 'ACTIVE', 'resume');
        return { moduleState: this.node.moduleState };
      case 'transfer-leadership': {
        if (this.node.role !== 'LEADER')
          throw new Error(
            `member ${this.options.memberId} is not the leader (leader: ${this.node.leaderId ?? 'unknown'})`,
          );
        const to = request.to ?? this.peers.connectedPeers()[0];
        if (to === undefined) throw new Error('no follower is connected to take over');
        this.input({ type: 'TRANSFER_LEADERSHIP', to });
        await waitFor(() => this.node.role !== 'LEADER', `leadership transfer to member ${to}`);
        return { to, leaderId: this.node.leaderId };
      }
      default:
        throw new Error(`unknown admin command "${String((request as { command: unknown }).command)}"`);
    }
  }

  /** Ask the consensus module for something an operator can ask (snapshot, suspend, transfer...). */
  request(input: ConsensusInput): void {
    this.input(input);
  }

  /**
   * Stop. `graceful` (SIGTERM): stop taking client work, hand leadership to an up-to-date follower if
   * this member leads, take a snapshot, wait for the store to settle, then close. Otherwise close at once.
   */
  async stop({
    graceful = false,
    timeoutMs = 2000,
  }: {
    graceful?: boolean;
    timeoutMs?: number;
  } = {}): Promise<void> {
    if (this.closed) return;
    if (graceful && this.node.role === 'LEADER') {
      const follower = this.peers.connectedPeers()[0];
      if (follower !== undefined) {
        this.log.info({ to: follower }, 'handing leadership over before shutdown');
        this.input({ type: 'TRANSFER_LEADERSHIP', to: follower });
        const deadline = performance.now() + timeoutMs;
        while (this.node.role === 'LEADER' && performance.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    }
    if (graceful && !this.failure) {
      // O3: leave a snapshot at the applied position, so the restart replays only what came after it.
      this.input({ type: 'REQUEST_SNAPSHOT' });
      await this.chain.catch(() => {});
    }
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.input({ type: 'SHUTDOWN' });
    await this.admin.stop();
    await this.clients.stop('member shutting down');
    await this.peers.stop();
    // A failing member does not wait for service work (a stuck apply must not hold up exit code 70).
    if (!this.failure) await this.chain.catch(() => {});
    await this.storage.close();
    await this.service.close?.();
    await this.store.close();
    this.log.info('member closed');
  }

  private async listen(): Promise<void> {
    await this.peers.start();
    await this.clients.start();
    await this.admin.start();
    this.input({ type: 'TICK', now: performance.now() });
    this.ticker = setInterval(() => {
      const now = performance.now();
      const clusterTime = Date.now();
      this.input({ type: 'TICK', now, clusterTime });
      // A leading service appends what is due (actor timers, sends): cluster time never runs backwards.
      if (this.service.tick && !this.failure && !this.closed)
        this.service.tick(Math.max(clusterTime, this.node.entryAt(this.node.lastIndex)?.timestamp ?? 0));
      this.sessionInput({ type: 'TICK', now });
    }, TICK_MS);
    const self = memberById(this.config, this.options.memberId);
    this.log.info({ clientPort: self.clientPort }, 'member listening for peers and clients');
    if (
      this.config.authentication.kind === 'allow-all' &&
      !this.options.authenticator &&
      !isLoopback(self.host)
    ) {
      this.log.warn(
        { host: self.host, authentication: 'allow-all' },
        `UNAUTHENTICATED CLIENTS: member ${self.id} accepts every client on ${self.host}, which is not a loopback address; ` +
          'set "authentication" to shared-token or challenge-response (npx chorus cluster up writes one)',
      );
    }
  }

  private newSessionManager(snapshot: SessionManagerSnapshot | null): SessionManager {
    const options = {
      memberId: this.options.memberId,
      maxSessions: this.config.maxSessions,
      // The client port refuses past this first, naming limits.maxClientConnections.
      maxConnections: maxClientConnections(this.config),
      sessionTimeoutMs: this.config.sessionTimeoutMs,
      authenticator: this.options.authenticator ?? authenticatorFor(this.config.authentication),
      // A session's proof of ownership (issue 11): unpredictable, from the OS's CSPRNG.
      resumeTokens: (length: number) => new Uint8Array(randomBytes(length)),
    };
    return snapshot ? SessionManager.fromSnapshot(snapshot, options) : new SessionManager(options);
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs
  // ---------------------------------------------------------------------------------------------

  /**
   * Feed the core. The high-rate inputs (client commands, peer messages, flush completions) are gathered
   * for the rest of this event-loop turn and handed over together with `handleAll` (setImmediate runs
   * right after the poll phase that read them): one replication round, one APPEND message per follower
   * and one group-committed log write per turn instead of one per command. Anything else is handled at
   * once, after whatever is queued, so the core sees inputs in arrival order.
   */
  private input(input: ConsensusInput): void {
    if (this.failure) return;
    this.pendingInputs.push(input);
    const type = input.type;
    if (type === 'CLIENT_COMMAND' || type === 'PEER_MESSAGE' || type === 'APPENDED') {
      if (!this.inputsScheduled) {
        this.inputsScheduled = true;
        setImmediate(this.handlePendingInputs);
      }
      return;
    }
    this.handlePendingInputs();
  }

  /** Hand every queued input to the core in one call and carry out the effects, in order. */
  private readonly handlePendingInputs = (): void => {
    this.inputsScheduled = false;
    if (this.failure || this.pendingInputs.length === 0) return;
    const inputs = this.pendingInputs;
    this.pendingInputs = [];
    let effects: ConsensusEffect[];
    try {
      effects = inputs.length === 1 ? this.node.handle(inputs[0]) : this.node.handleAll(inputs);
    } catch (error) {
      this.fail(error as Error, `consensus inputs ${[...new Set(inputs.map((i) => i.type))].join(', ')}`);
      return;
    }
    this.executeAll(effects);
  };

  /**
   * Carry out effects in order. A run of adjacent APPENDs (one per client command of a batch) goes to the
   * store as one append; its completion reports the run's last seq, which acknowledges them all.
   */
  private executeAll(effects: readonly ConsensusEffect[]): void {
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i];
      if (effect.type !== 'APPEND') {
        this.execute(effect);
        continue;
      }
      let seq = effect.seq;
      let entries = effect.entries;
      if (effects[i + 1]?.type === 'APPEND') {
        const run = [...entries];
        for (let next = effects[i + 1]; next?.type === 'APPEND'; next = effects[i + 1]) {
          for (const entry of next.entries) run.push(entry);
          seq = next.seq;
          i++;
        }
        entries = run;
      }
      this.appendToLog(entries, seq);
    }
  }

  /**
   * Enqueue entries in the store now (one event-loop turn's appends share a group commit), or once a
   * snapshot install before them has completed. The store settles appends in order, once flushed;
   * APPENDED does not wait behind apply or snapshot steps.
   */
  private appendToLog(entries: readonly LogEntry[], seq: number): void {
    this.storage.run({
      what: 'log append',
      start: () => this.store.log.append(entries),
      done: () => this.input({ type: 'APPENDED', seq }),
    });
  }

  private sessionInput(input: SessionInput): void {
    for (const effect of this.sessions.handle(input)) this.executeSession(effect);
  }

  private acceptClient(connection: FramedConnection): void {
    const connectionId = this.nextConnectionId++;
    this.connections.set(connectionId, connection);
    this.sessionInput({ type: 'CONNECTION_OPENED', now: performance.now(), connectionId });
    connection.on('frame', (kind, body) => {
      if (kind !== ClientKind.CLIENT_REQUEST) {
        connection.close(
          `unexpected frame kind ${kind}: clients send CLIENT_REQUEST (${ClientKind.CLIENT_REQUEST})`,
        );
        return;
      }
      const parsed = parseClientRequest(connectionId, performance.now(), body);
      if (!parsed.ok) {
        connection.send(ClientKind.SESSION_EVENT, { code: 'ERROR', detail: parsed.error, retryable: false });
        connection.close(parsed.error);
        return;
      }
      connection.establish(); // a well-formed request: the handshake timeout ends, the idle timeout starts
      this.sessionInput(parsed.input);
    });
    connection.once('close', () => {
      this.connections.delete(connectionId);
      this.sessionInput({ type: 'CONNECTION_CLOSED', now: performance.now(), connectionId });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Effects
  // ---------------------------------------------------------------------------------------------

  /** Run a service step after every one queued before it. */
  private inOrder(step: () => Promise<void> | void, what: string): void {
    this.chain = this.chain.then(step).catch((error) => this.fail(error as Error, what));
  }

  private fail(error: Error, what: string): void {
    if (this.failure) return;
    this.failure = error;
    this.log.fatal({ err: error }, `member stopped: ${what} failed: ${error.message}`);
    void this.stop().finally(() => process.exit(70));
  }

  private execute(effect: ConsensusEffect): void {
    switch (effect.type) {
      case 'SEND':
        this.peers.send(effect.to, effect.message);
        return;
      case 'APPEND':
        this.appendToLog(effect.entries, effect.seq);
        return;
      case 'TRUNCATE': {
        const { fromIndex } = effect;
        this.storage.run({ what: 'log truncate', start: () => this.store.log.truncateFrom(fromIndex) });
        return;
      }
      case 'PURGE': {
        const { toIndex } = effect;
        this.storage.run({ what: 'log purge', start: () => this.store.log.purgeTo(toIndex) });
        return;
      }
      case 'SAVE_NODE_STATE': {
        const { seq, currentTerm, candidateTermId, votedFor } = effect;
        this.storage.run({
          what: 'node state save',
          start: () => this.store.nodeState.save({ currentTerm, candidateTermId, votedFor }),
          done: () => this.input({ type: 'NODE_STATE_SAVED', seq }),
        });
        return;
      }
      case 'COMMIT':
      case 'PROPOSED':
        return;
      case 'PROPOSAL_REJECTED':
        this.log.debug({ effect }, 'proposal refused: this member is not a ready leader');
        return;
      case 'APPLY': {
        const entries = effect.entries;
        this.inOrder(() => this.apply(entries), 'apply');
        return;
      }
      case 'REJECT':
        this.rejectCommand(effect.sessionId, effect.correlationId, effect.reason, effect.leaderId);
        return;
      case 'TAKE_SNAPSHOT': {
        const { index, term } = effect;
        this.inOrder(() => this.takeSnapshot(index, term), 'snapshot');
        return;
      }
      case 'INSTALL_SNAPSHOT': {
        // Storage: a barrier, so the entries the leader sends after its snapshot append on top of it.
        // Service: restored in apply order, before the entries after the snapshot are applied.
        const snapshot = effect.snapshot;
        this.storage.run({
          what: 'snapshot install',
          barrier: true,
          start: () => this.snapshotSets.run(() => storeLeaderSnapshot(this.store, snapshot)),
          done: () => {
            this.log.info(
              { index: snapshot.index, term: snapshot.term },
              'snapshot installed from the leader',
            );
            this.input({ type: 'SNAPSHOT_INSTALLED', index: snapshot.index });
          },
        });
        this.inOrder(() => this.restoreSnapshot(snapshot), 'snapshot restore');
        return;
      }
      case 'ROLE_CHANGE':
        this.log.info(
          { from: effect.from, to: effect.to, term: effect.term },
          `ROLE_CHANGE: ${effect.from} -> ${effect.to}`,
        );
        this.sessionInput({ type: 'ROLE_CHANGED', now: performance.now(), leader: this.leaderView() });
        return;
      case 'ELECTION_STATE_CHANGE':
        this.log.info(
          { from: effect.from, to: effect.to, term: effect.term },
          `ELECTION_STATE_CHANGE: memberId=${this.options.memberId} ${effect.from} -> ${effect.to}`,
        );
        if (effect.to === 'LEADER_READY') this.leadService(effect.term);
        // Every step of an election can change what clients must be told: a follower that lost its
        // leader (CANVASS) must answer NO_LEADER, never redirect a client to the leader it lost (issue 10).
        this.sessionInput({ type: 'ROLE_CHANGED', now: performance.now(), leader: this.leaderView() });
        return;
      case 'MODULE_STATE_CHANGE':
        this.log.info(
          { from: effect.from, to: effect.to },
          `MODULE_STATE_CHANGE: ${effect.from} -> ${effect.to}`,
        );
        return;
    }
  }

  private leaderView(): LeaderView {
    const leaderId = this.node.leaderId;
    if (leaderId === null || (!this.node.isReadyLeader && leaderId === this.options.memberId))
      return { kind: 'UNKNOWN' };
    if (leaderId === this.options.memberId) return { kind: 'SELF' };
    const leader = this.config.members.find((m) => m.id === leaderId);
    return leader
      ? { kind: 'OTHER', leaderId, endpoint: `${leader.host}:${leader.clientPort}` }
      : { kind: 'UNKNOWN' };
  }

  private async apply(entries: readonly LogEntry[]): Promise<void> {
    const now = performance.now();
    for (const entry of entries) {
      if (entry.kind === EntryKind.SESSION_OPEN || entry.kind === EntryKind.SESSION_CLOSE) {
        this.sessionInput({ type: 'COMMITTED', now, entry });
      }
    }
    // Only the ready leader answers clients: a follower's service need not build replies.
    const replies = await this.service.apply(entries, { replies: this.node.isReadyLeader });
    this.snapshotByPolicy(entries);
    if (!this.node.isReadyLeader) return; // only the leader answers clients
    for (const reply of replies) {
      const connectionId = this.sessions.connectionOf(reply.sessionId);
      if (connectionId === null) continue;
      this.connections
        .get(connectionId)
        ?.send(
          ClientKind.REPLY,
          reply.outcomeUnknown
            ? { correlationId: reply.correlationId, payload: reply.payload, outcomeUnknown: true }
            : { correlationId: reply.correlationId, payload: reply.payload },
        );
    }
  }

  /**
   * The snapshot policy: every `snapshot.everyEntries` entries or `snapshot.everyBytes` payload bytes applied
   * since the last snapshot, each member snapshots itself (the consensus module ignores a request while one
   * is being taken).
   */
  private snapshotByPolicy(entries: readonly LogEntry[]): void {
    for (const entry of entries) this.bytesSinceSnapshot += entry.payload.length;
    const { everyEntries, everyBytes } = this.config.snapshot;
    const byEntries =
      everyEntries !== null && this.node.appliedIndex - this.node.snapshotIndex >= everyEntries;
    const byBytes = everyBytes !== null && this.bytesSinceSnapshot >= everyBytes;
    if ((byEntries || byBytes) && this.node.moduleState === 'ACTIVE') {
      this.bytesSinceSnapshot = 0;
      this.input({ type: 'REQUEST_SNAPSHOT' });
    }
  }

  private rejectCommand(
    sessionId: number,
    correlationId: number,
    reason: string,
    leaderId: number | null,
  ): void {
    const connectionId = this.sessions.connectionOf(sessionId);
    const connection = connectionId === null ? undefined : this.connections.get(connectionId);
    if (!connection) return;
    if (reason === 'NOT_LEADER' && leaderId !== null && leaderId !== this.options.memberId) {
      const leader = this.config.members.find((m) => m.id === leaderId);
      if (leader) {
        connection.send(ClientKind.SESSION_EVENT, {
          code: 'REDIRECT',
          leaderId,
          endpoint: `${leader.host}:${leader.clientPort}`,
        });
        return;
      }
    }
    // Suspended, transferring or between leaders: the command was not taken; the client sends it again.
    connection.send(ClientKind.BUSY, { correlationId, retryAfterMs: 50, detail: `not accepted: ${reason}` });
  }

  private async takeSnapshot(index: number, term: number): Promise<void> {
    const timestamp = this.node.entryAt(index)?.timestamp ?? 0;
    const serviceBytes = await this.service.snapshot();
    const moduleBytes = pack(this.sessions.toSnapshot());
    const recorded = await this.snapshotSets.run(async () => {
      // The leader's snapshot installed meanwhile is newer: this one is of no use (the log is purged past it).
      if (index <= this.node.snapshotIndex) return false;
      await recordSnapshotSet(
        this.store,
        { index, term, timestamp },
        { module: moduleBytes, service: serviceBytes },
      );
      await this.store.pruneSnapshots(this.config.snapshot.keep);
      return true;
    });
    const bytes = serviceBytes.length + moduleBytes.length;
    if (recorded) this.log.info({ index, term, bytes }, 'snapshot taken');
    else {
      const installed = this.node.snapshotIndex;
      this.log.info(
        { index, term, installed },
        'snapshot dropped: the leader snapshot installed meanwhile is newer',
      );
    }
    this.input({
      type: 'SNAPSHOT_TAKEN',
      snapshot: { index, term, data: pack({ module: moduleBytes, service: serviceBytes }) },
    });
  }

  /** The service half of installing a leader's snapshot (the storage half is `storeLeaderSnapshot`). */
  private async restoreSnapshot(snapshot: SnapshotImage): Promise<void> {
    const image = decodeSnapshotData(snapshot.data);
    await this.service.restore(image.service);
    this.sessions = this.newSessionManager(image.sessions);
    this.sessionInput({ type: 'ROLE_CHANGED', now: performance.now(), leader: this.leaderView() });
  }

  // Session manager effects.
  private executeSession(effect: SessionEffect): void {
    switch (effect.type) {
      case 'SEND':
        this.connections.get(effect.connectionId)?.send(ClientKind.SESSION_EVENT, effect.event);
        return;
      case 'CLOSE_CONNECTION':
        this.connections.get(effect.connectionId)?.close(effect.reason);
        return;
      case 'APPEND':
        this.proposeSessionEntry(effect.kind, effect.payload, effect.connectionId);
        return;
      case 'FORWARD': {
        // Back-pressure (R1, R5): past a bound of appended but unapplied entries, new input is answered
        // BUSY with a retry-after instead of growing the log and the queues without limit.
        const backlog = this.node.lastIndex - this.node.appliedIndex;
        const connectionId = this.sessions.connectionOf(effect.sessionId);
        const connection = connectionId === null ? undefined : this.connections.get(connectionId);
        if (backlog >= this.config.maxUnappliedEntries) {
          connection?.send(ClientKind.BUSY, {
            correlationId: effect.correlationId,
            retryAfterMs: 50,
            detail: `overloaded: ${backlog} entries appended and not yet applied (maxUnappliedEntries ${this.config.maxUnappliedEntries})`,
          });
          return;
        }
        // The service edge: the service's own checks run here, before the log (a raw client skips the
        // client library's). A refusal is answered like a reply and never reaches the log.
        const admitted = this.service.admit(effect.body, maxCommandBytes(this.config));
        if (!admitted.ok) {
          connection?.send(ClientKind.REPLY, {
            correlationId: effect.correlationId,
            payload: admitted.payload,
          });
          return;
        }
        this.input({
          type: 'CLIENT_COMMAND',
          sessionId: effect.sessionId,
          correlationId: effect.correlationId,
          lowestAwaited: effect.lowestAwaited,
          payload: admitted.body,
        });
        return;
      }
    }
  }

  /** Hand the service this leadership (in apply order, after everything applied so far; never in replay). */
  private leadService(term: number): void {
    const service = this.service;
    if (!service.lead) return;
    const leading = () => this.node.isReadyLeader && this.node.term === term && !this.closed && !this.failure;
    const leader: LeaderContext = {
      propose: (entries) => this.proposeServiceEntries(entries),
      get active() {
        return leading();
      },
    };
    this.inOrder(() => service.lead?.(leader), 'service leadership take-over');
  }

  /** Append entries the service asks for (leader only): how many the consensus module took. */
  private proposeServiceEntries(entries: readonly ProposedEntry[]): number {
    // Inputs queued this turn go first, so the core sees them in arrival order.
    this.handlePendingInputs();
    if (this.failure || entries.length === 0) return 0;
    const effects = this.node.handleAll(
      entries.map(({ kind, payload }) => ({ type: 'PROPOSE', kind, payload }) as const),
    );
    let taken = 0;
    for (const effect of effects) if (effect.type === 'PROPOSED') taken++;
    this.executeAll(effects);
    return taken;
  }

  private proposeSessionEntry(kind: EntryKind, payload: Uint8Array, connectionId: number | undefined): void {
    // Inputs queued this turn go first, so the core sees them in arrival order.
    this.handlePendingInputs();
    if (this.failure) return;
    const effects = this.node.handle({ type: 'PROPOSE', kind, payload });
    for (const effect of effects) {
      if (effect.type === 'PROPOSED' && kind === EntryKind.SESSION_OPEN && connectionId !== undefined) {
        this.sessionInput({
          type: 'OPEN_APPENDED',
          now: performance.now(),
          connectionId,
          index: effect.index,
        });
      }
      this.execute(effect);
    }
  }
}

/** The built-in authenticator a configuration names. Challenge nonces come from the OS's CSPRNG. */
export const authenticatorFor = (authentication: ClusterConfig['authentication']): Authenticator => {
  switch (authentication.kind) {
    case 'allow-all':
      return allowAllAuthenticator();
    case 'shared-token':
      return sharedTokenAuthenticator({ token: authentication.token });
    case 'challenge-response':
      return challengeResponseAuthenticator({
        secrets: authentication.secrets,
        nonces: (length) => randomBytes(length),
      });
  }
};

/** A limit of the configuration, with the setting that raises it (for refusal messages). */
const limit = (
  config: ClusterConfig,
  name: Exclude<keyof ClusterConfig['limits'], 'maxClientConnections'>,
): Limit => ({ value: config.limits[name], setting: `limits.${name}` });

const maxClientConnections = (config: ClusterConfig): number =>
  config.limits.maxClientConnections ?? config.maxSessions * 2;

const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** The snapshot image a member hands the consensus core: both parts, msgpack-encoded. */
const decodeSnapshotData = (
  data: Uint8Array,
): { sessions: SessionManagerSnapshot | null; service: Uint8Array | null } => {
  const { module, service } = snapshotParts(data);
  return { sessions: module ? (unpack(module) as SessionManagerSnapshot) : null, service };
};
