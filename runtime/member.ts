// One cluster member: the pure consensus module (actors/consensus/consensus-module.ts) driven by real
// time, TCP peers and clients, the LMDB store and the hosted services. This is the imperative shell and
// decides nothing: inputs go to the module, its one ordered effect stream is carried out.
//
//   peers (TCP) ──────┐                            ┌─ APPEND/TRUNCATE/PURGE/SAVE_NODE_STATE → LMDB
//   clients (TCP) ────┤                            ├─ SEND → peers;  CLIENT_* → client connections
//   OS timer (TICK) ──┼→ ConsensusModule.handleAll ┼─ APPLY / TAKE_SNAPSHOT / LEAD_SERVICES → services
//   store / services ─┘   (member-effects.ts)      └─ STORAGE_FENCED / REJOIN → this member
//   completions
//
// Files: member-clients.ts (the client edge), member-effects.ts (the effect executor), member-storage.ts
// (storage steps in order), member-recovery.ts (start-up state and the module's configuration),
// member-admin.ts (cluster-tool commands). A Member never exits the process: a fatal failure stops it and
// is reported through `onFailure` (runtime/member-process.ts exits with code 70).

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ConsensusModule, ModuleEffect, ModuleInput } from '../actors/consensus/consensus-module.ts';
import type { Authenticator } from '../actors/sessions/authenticators.ts';
import { type MemberStore, openMemberStore } from '../persistence/index.ts';
import { ActorServiceHost } from './actor-runtime/actor-service-host.ts';
import { AdminServer } from './admin.ts';
import {
  type ClusterConfig,
  maxEntryPayloadBytes,
  maxPeerFrameBytes,
  memberById,
  peerSecrets,
} from './config.ts';
import { isLoopbackHost } from './config-rules.ts';
import { MemberFeed } from './inspector/member-feed.ts';
import { handleAdmin } from './member-admin.ts';
import { ClientEdge, limit } from './member-clients.ts';
import { EffectExecutor, type EffectHost } from './member-effects.ts';
import { loadRecovery, newConsensusModule } from './member-recovery.ts';
import { storageWorks } from './member-storage.ts';
import { PeerNetwork } from './peer-network.ts';
import { KvServiceHost, type ProposedEntry, type ServiceHost } from './service-host.ts';

export { authenticatorFor } from './member-recovery.ts';
export { SERVICE_SNAPSHOT_ID } from './member-storage.ts';

const TICK_MS = 5;

export interface MemberOptions {
  readonly config: ClusterConfig;
  readonly memberId: number;
  readonly logger: Logger;
  readonly service?: ServiceHost;
  readonly authenticator?: Authenticator;
  /** Called once a fatal failure has stopped the member (the FATAL record names it). */
  readonly onFailure?: (error: Error) => void;
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
  /** Why the storage failed, while this member is out of the cluster because of it (D1, D2); else null. */
  readonly storageFailure: string | null;
}

export class Member implements EffectHost {
  readonly config: ClusterConfig;
  readonly log: Logger;
  readonly peers: PeerNetwork;
  readonly clients: ClientEdge;
  module: ConsensusModule;
  private effects: EffectExecutor;
  private readonly admin: AdminServer;
  /** The admin HTTP listener (metrics, the inspector's feed), when the member has an adminHttpPort. */
  private feed: MemberFeed | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private probe: NodeJS.Timeout | null = null;
  private closed = false;
  private failure: Error | null = null;
  private rejoining = false;
  /** Inputs gathered this event-loop turn, for one `handleAll` (see `input`). */
  private pendingInputs: ModuleInput[] = [];
  private inputsScheduled = false;

  private constructor(
    private readonly options: MemberOptions,
    readonly store: MemberStore,
    readonly service: ServiceHost,
    module: ConsensusModule,
  ) {
    this.config = options.config;
    this.log = options.logger;
    this.module = module;
    this.effects = new EffectExecutor(this);
    const self = memberById(this.config, options.memberId);
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
      warn: (fields, message) => this.log.warn(fields, message),
    });
    this.clients = new ClientEdge(this.config, self, (input) => this.input(input));
    this.admin = new AdminServer(
      store.dir,
      {
        maxConnections: limit(this.config, 'maxAdminConnections'),
        handshakeTimeoutMs: limit(this.config, 'handshakeTimeoutMs'),
        idleTimeoutMs: limit(this.config, 'idleTimeoutMs'),
      },
      (request) => handleAdmin(this, request),
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
      const recovery = await loadRecovery(store, service, logger);
      const module = newConsensusModule(config, memberId, options.authenticator, service, recovery);
      const member = new Member(options, store, service, module);
      await member.listen();
      return member;
    } catch (error) {
      await service.close?.();
      await store.close();
      throw error;
    }
  }

  get memberId(): number {
    return this.options.memberId;
  }

  get running(): boolean {
    return !this.closed && this.failure === null;
  }

  status(): MemberStatus {
    const { node } = this.module;
    return {
      memberId: this.options.memberId,
      role: this.module.role,
      electionState: node.electionState,
      moduleState: node.moduleState,
      term: node.term,
      leaderId: this.module.storageFailed === null ? node.leaderId : null,
      commitIndex: node.commitIndex,
      appliedIndex: node.appliedIndex,
      lastIndex: node.lastIndex,
      connectedPeers: this.peers.connectedPeers(),
      sessions: this.module.activeSessions,
      storageFailure: this.module.storageFailed,
    };
  }

  /** Everything the cluster tool's `describe` shows. */
  describe(): object {
    const log = this.store.log;
    return {
      ...this.status(),
      dir: this.store.dir,
      pid: process.pid,
      snapshotIndex: this.module.node.snapshotIndex,
      members: this.config.members,
      log: { firstIndex: log.firstIndex, lastIndex: log.lastIndex, durableIndex: log.durableIndex },
      nodeState: this.store.nodeState.load(),
      snapshotSets: this.store.recordingLog
        .snapshotSets()
        .map((set) => ({ setId: set.setId, logIndex: set.logIndex, term: set.term, valid: set.valid })),
      clientSessions: this.module
        .listSessions()
        .map(({ id, principal, state, connectionId }) => ({ id, principal, state, connectionId })),
    };
  }

  connectedPeers(): readonly number[] {
    return this.peers.connectedPeers();
  }

  /** Ask the consensus module for something an operator can ask (snapshot, suspend, transfer...). */
  request(input: ModuleInput): void {
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
    if (graceful && this.module.role === 'LEADER') {
      const follower = this.peers.connectedPeers()[0];
      if (follower !== undefined) {
        this.log.info({ to: follower }, 'handing leadership over before shutdown');
        this.input({ type: 'TRANSFER_LEADERSHIP', to: follower });
        const deadline = performance.now() + timeoutMs;
        while (this.module.role === 'LEADER' && performance.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    }
    if (graceful && !this.failure) {
      // O3: leave a snapshot at the applied position, so the restart replays only what came after it.
      this.input({ type: 'REQUEST_SNAPSHOT' });
      await this.effects.drain();
    }
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    if (this.probe) clearInterval(this.probe);
    this.input({ type: 'SHUTDOWN' }, true);
    await this.admin.stop();
    await this.feed?.stop();
    await this.clients.stop('member shutting down');
    await this.peers.stop();
    // A failing member does not wait for service work (a stuck apply must not hold up its exit).
    await this.effects.close({ waitForServices: !this.failure });
    await this.service.close?.();
    await this.store.close();
    this.log.info('member closed');
  }

  private async listen(): Promise<void> {
    await this.peers.start();
    await this.clients.start();
    await this.admin.start();
    const self = memberById(this.config, this.options.memberId);
    if (self.adminHttpPort !== undefined) {
      this.feed = new MemberFeed(this, self.adminHttpPort);
      await this.feed.start();
    }
    this.input({ type: 'TICK', now: performance.now() });
    this.ticker = setInterval(() => {
      this.input({ type: 'TICK', now: performance.now(), clusterTime: Date.now() });
    }, TICK_MS);
    this.log.info({ clientPort: self.clientPort }, 'member listening for peers and clients');
    if (
      this.config.authentication.kind === 'allow-all' &&
      !this.options.authenticator &&
      !isLoopbackHost(self.host)
    ) {
      this.log.warn(
        { host: self.host, authentication: 'allow-all' },
        `UNAUTHENTICATED CLIENTS: member ${self.id} accepts every client on ${self.host}, which is not a loopback address; ` +
          'set "authentication" to shared-token or challenge-response (npx chorus cluster up writes one)',
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs
  // ---------------------------------------------------------------------------------------------

  /**
   * Feed the module. The high-rate inputs (client frames, peer messages, flush and apply completions) are gathered
   * for the rest of this event-loop turn and handed over together with `handleAll` (setImmediate runs right
   * after the poll phase that read them): one replication round, one APPEND message per follower and one
   * group-committed log write per turn instead of one per command. Anything else is handled at once, after
   * whatever is queued, so the module sees inputs in arrival order.
   */
  input(input: ModuleInput, closing = false): void {
    if (this.failure || (this.closed && !closing)) return;
    this.pendingInputs.push(input);
    const type = input.type;
    if (type === 'CLIENT' || type === 'PEER_MESSAGE' || type === 'APPENDED' || type === 'SERVICES_REPLAYED') {
      if (!this.inputsScheduled) {
        this.inputsScheduled = true;
        setImmediate(this.handlePendingInputs);
      }
      return;
    }
    this.handlePendingInputs();
  }

  /** Hand every queued input to the module in one call and carry out the effects, in order. */
  private readonly handlePendingInputs = (): ModuleEffect[] => {
    this.inputsScheduled = false;
    if (this.failure || this.pendingInputs.length === 0) return [];
    const inputs = this.pendingInputs;
    this.pendingInputs = [];
    let effects: ModuleEffect[];
    try {
      effects = this.module.handleAll(inputs);
    } catch (error) {
      this.fatal(error as Error, `consensus inputs ${[...new Set(inputs.map((i) => i.type))].join(', ')}`);
      return [];
    }
    this.effects.executeAll(effects);
    this.feed?.observe(inputs, effects);
    return effects;
  };

  /** Append entries the services ask for (leader only): how many the consensus module took. */
  propose(entries: readonly ProposedEntry[]): number {
    if (this.failure || entries.length === 0) return 0;
    // Inputs queued this turn go first, so the module sees them in arrival order.
    this.handlePendingInputs();
    for (const { kind, payload } of entries) this.pendingInputs.push({ type: 'PROPOSE', kind, payload });
    let taken = 0;
    for (const effect of this.handlePendingInputs()) if (effect.type === 'PROPOSED') taken++;
    return taken;
  }

  // ---------------------------------------------------------------------------------------------
  // Failures
  // ---------------------------------------------------------------------------------------------

  /** The one fatal path: a FATAL record naming what failed, the member stops, `onFailure` is told. */
  fatal(error: Error, what: string): void {
    if (this.failure) return;
    this.failure = error;
    this.log.fatal({ err: error }, `member stopped: ${what} failed: ${error.message}`);
    void this.stop().finally(() => this.options.onFailure?.(error));
  }

  /**
   * The storage cannot take writes (D1 on a leader, D2 on a follower): the module steps out of the cluster
   * (the others elect without it), and the store is probed every election timeout until it works again.
   */
  storageFailed(error: Error, what: string): void {
    if (!this.running || this.module.storageFailed !== null) return;
    this.input({ type: 'STORAGE_FAILED', reason: `${what} failed: ${error.message}` });
    let probing = false;
    this.probe = setInterval(() => {
      if (probing) return;
      probing = true;
      void storageWorks(this.store).then((works) => {
        probing = false;
        if (!works || !this.probe) return;
        clearInterval(this.probe);
        this.probe = null;
        this.input({ type: 'STORAGE_RECOVERED' });
      });
    }, this.config.electionTimeoutMs);
  }

  /** Storage works again: wait for the services, rebuild the module from the store, and rejoin. */
  rejoin(): void {
    if (this.rejoining || !this.running) return;
    this.rejoining = true;
    const old = this.effects;
    void (async () => {
      await old.close({ waitForServices: true });
      const recovery = await loadRecovery(this.store, this.service, this.log);
      if (!this.running) return;
      this.module = newConsensusModule(
        this.config,
        this.memberId,
        this.options.authenticator,
        this.service,
        recovery,
      );
      this.effects = new EffectExecutor(this);
      this.pendingInputs = [];
      this.log.info({ lastIndex: this.module.node.lastIndex }, 'storage works again: rejoining the cluster');
      this.input({ type: 'TICK', now: performance.now() });
    })()
      .catch((error) => this.fatal(error as Error, 'rejoining after a storage failure'))
      .finally(() => {
        this.rejoining = false;
      });
  }
}
