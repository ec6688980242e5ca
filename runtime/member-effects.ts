// The member's effect executor: it carries out the consensus module's effects, in the order the module
// emitted them, against LMDB (member-storage.ts), the peers, the client edge and the services, and feeds
// the completions back as inputs. It decides nothing.
//
//   APPEND/TRUNCATE/PURGE/SAVE_NODE_STATE → the store, in emission order → APPENDED / NODE_STATE_SAVED
//   INSTALL_SNAPSHOT → the store (a barrier) → SNAPSHOT_INSTALLED; the services restored in apply order
//   APPLY → the services, one step after another → SERVICES_REPLAYED { index, replies }
//   TAKE_SNAPSHOT → the services' snapshot + the module part → a recorded set → SNAPSHOT_TAKEN
//   SEND → the peer network;  CLIENT_* / CLOSE_CONNECTION → the client edge
//   LEAD_SERVICES / SERVICE_TICK → the services;  STORAGE_FENCED / REJOIN → the member
//
// A storage step that fails because the disk is full is reported as a storage failure (the member steps
// out of the cluster and rejoins once it can write again, D1/D2); any other failure is fatal.

import type { Logger } from 'pino';
import type { ConsensusModule, ModuleEffect, ModuleInput } from '../actors/consensus/consensus-module.ts';
import type { SnapshotImage } from '../actors/consensus/index.ts';
import { encodeSnapshotParts, snapshotParts } from '../actors/consensus/snapshot-parts.ts';
import type { LogEntry } from '../actors/log/log-entry.ts';
import { type MemberStore, StorageError } from '../persistence/index.ts';
import type { ClusterConfig } from './config.ts';
import type { ClientEdge } from './member-clients.ts';
import {
  recordSnapshotSet,
  SnapshotSetWrites,
  StorageSequence,
  storeLeaderSnapshot,
} from './member-storage.ts';
import type { PeerNetwork } from './peer-network.ts';
import type { LeaderContext, ProposedEntry, ServiceHost } from './service-host.ts';

/** What the executor works on: the member's parts, and its ways to report back. */
export interface EffectHost {
  readonly config: ClusterConfig;
  readonly log: Logger;
  readonly store: MemberStore;
  readonly service: ServiceHost;
  readonly peers: PeerNetwork;
  readonly clients: ClientEdge;
  /** The module the effects came from (the one in service now). */
  readonly module: ConsensusModule;
  /** False once the member is closing or has failed. */
  readonly running: boolean;
  input(input: ModuleInput): void;
  /** Append what the services ask for (leader only); how many entries were taken. */
  propose(entries: readonly ProposedEntry[]): number;
  /** A failure the member cannot go on from: it stops. */
  fatal(error: Error, what: string): void;
  /** The storage cannot take writes (disk full): the member steps out until it can. */
  storageFailed(error: Error, what: string): void;
  /** Storage works again: rebuild the module from the store and rejoin. */
  rejoin(): void;
}

/** A failure the storage recovers from once space returns (D1, D2); anything else is fatal. */
export const isStorageFull = (error: Error): boolean =>
  error instanceof StorageError && error.code === 'DISK_FULL';

export class EffectExecutor {
  /** Service steps (apply, snapshot, restore, leadership) run in order, one after another. */
  private chain: Promise<void> = Promise.resolve();
  /** Storage effects take effect in the order the consensus module emitted them. */
  private readonly storage: StorageSequence;
  /** Snapshot sets (taken here or installed from the leader) are recorded one at a time. */
  private readonly snapshotSets = new SnapshotSetWrites();

  constructor(private readonly host: EffectHost) {
    this.storage = new StorageSequence((error, what) =>
      isStorageFull(error) ? host.storageFailed(error, what) : host.fatal(error, what),
    );
  }

  /** Every service step queued so far has run (or failed). */
  drain(): Promise<void> {
    return this.chain.catch(() => {});
  }

  /** Start nothing more; resolves once the service steps and the storage barrier in flight have settled. */
  async close({ waitForServices }: { waitForServices: boolean }): Promise<void> {
    if (waitForServices) await this.drain();
    await this.storage.close();
  }

  /**
   * Carry out effects in order. A run of adjacent APPENDs (one per client command of a batch) goes to the
   * store as one append; its completion reports the run's last seq, which acknowledges them all.
   */
  executeAll(effects: readonly ModuleEffect[]): void {
    let tickAt: number | null = null;
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i];
      if (effect.type === 'SERVICE_TICK') {
        tickAt = effect.clusterTime;
        continue;
      }
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
      this.append(entries, seq);
    }
    // Last: the services' tick may propose entries at once (due timers), which calls the module again and
    // carries out its effects there. Those must not overtake the effects above: an APPEND's seq is its place
    // in the log's write order, and the module takes the completion of a seq for every append before it.
    if (tickAt !== null) this.serviceTick(tickAt);
  }

  private serviceTick(clusterTime: number): void {
    if (this.host.running) this.host.service.tick?.(clusterTime);
  }

  private execute(effect: ModuleEffect): void {
    const { host } = this;
    switch (effect.type) {
      case 'SEND':
        host.peers.send(effect.to, effect.message);
        return;
      case 'APPEND':
        this.append(effect.entries, effect.seq);
        return;
      case 'TRUNCATE': {
        const { fromIndex } = effect;
        this.storage.run({ what: 'log truncate', start: () => host.store.log.truncateFrom(fromIndex) });
        return;
      }
      case 'PURGE': {
        const { toIndex } = effect;
        this.storage.run({ what: 'log purge', start: () => host.store.log.purgeTo(toIndex) });
        return;
      }
      case 'SAVE_NODE_STATE': {
        const { seq, currentTerm, candidateTermId, votedFor } = effect;
        this.storage.run({
          what: 'node state save',
          start: () => host.store.nodeState.save({ currentTerm, candidateTermId, votedFor }),
          done: () => host.input({ type: 'NODE_STATE_SAVED', seq }),
        });
        return;
      }
      case 'INSTALL_SNAPSHOT':
        this.installSnapshot(effect.snapshot);
        return;
      case 'APPLY': {
        const { entries, replies } = effect;
        this.inOrder(() => this.apply(entries, replies), 'apply');
        return;
      }
      case 'TAKE_SNAPSHOT': {
        const { index, term, timestamp, module } = effect;
        this.inOrder(() => this.takeSnapshot(index, term, timestamp, module), 'snapshot');
        return;
      }
      case 'CLIENT_EVENT':
      case 'CLIENT_REPLY':
      case 'CLIENT_BUSY':
      case 'CLIENT_NOTIFY':
      case 'CLOSE_CONNECTION':
        host.clients.execute(effect);
        return;
      case 'LEAD_SERVICES':
        this.leadServices(effect.term);
        return;
      case 'SERVICE_TICK': // executeAll runs it after the other effects
        return;
      case 'STORAGE_FENCED':
        host.log.error(
          { role: host.module.node.role, term: host.module.node.term },
          `storage failed, out of the cluster until it works again: ${effect.reason}`,
        );
        return;
      case 'REJOIN':
        host.rejoin();
        return;
      case 'ROLE_CHANGE':
        host.log.info(
          { from: effect.from, to: effect.to, term: effect.term },
          `ROLE_CHANGE: ${effect.from} -> ${effect.to}`,
        );
        return;
      case 'ELECTION_STATE_CHANGE':
        host.log.info(
          { from: effect.from, to: effect.to, term: effect.term },
          `ELECTION_STATE_CHANGE: memberId=${host.module.node.memberId} ${effect.from} -> ${effect.to}`,
        );
        return;
      case 'MODULE_STATE_CHANGE':
        host.log.info(
          { from: effect.from, to: effect.to },
          `MODULE_STATE_CHANGE: ${effect.from} -> ${effect.to}`,
        );
        return;
      case 'PROPOSAL_REJECTED':
        host.log.debug({ effect }, 'proposal refused: this member is not a ready leader');
        return;
      case 'COMMIT':
      case 'PROPOSED':
        return;
    }
  }

  /**
   * Enqueue entries in the store now (one event-loop turn's appends share a group commit), or once a
   * snapshot install before them has completed. APPENDED does not wait behind apply or snapshot steps.
   */
  private append(entries: readonly LogEntry[], seq: number): void {
    this.storage.run({
      what: 'log append',
      start: () => this.host.store.log.append(entries),
      done: () => this.host.input({ type: 'APPENDED', seq }),
    });
  }

  /** Run a service step after every one queued before it. */
  private inOrder(step: () => Promise<void> | void, what: string): void {
    this.chain = this.chain
      .then(step)
      .catch((error: Error) =>
        isStorageFull(error) ? this.host.storageFailed(error, what) : this.host.fatal(error, what),
      );
  }

  private async apply(entries: readonly LogEntry[], replies: boolean): Promise<void> {
    const produced = await this.host.service.apply(entries, { replies });
    const index = entries[entries.length - 1]?.index ?? 0;
    this.host.input({ type: 'SERVICES_REPLAYED', index, replies: replies ? produced : [] });
  }

  /**
   * Storage: a barrier, so the entries the leader sends after its snapshot append on top of it. Services:
   * restored in apply order, before the entries after the snapshot are applied.
   */
  private installSnapshot(snapshot: SnapshotImage): void {
    const { host } = this;
    this.storage.run({
      what: 'snapshot install',
      barrier: true,
      start: () => this.snapshotSets.run(() => storeLeaderSnapshot(host.store, snapshot)),
      done: () => {
        host.log.info({ index: snapshot.index, term: snapshot.term }, 'snapshot installed from the leader');
        host.input({ type: 'SNAPSHOT_INSTALLED', index: snapshot.index });
      },
    });
    this.inOrder(() => host.service.restore(snapshotParts(snapshot.data).service), 'snapshot restore');
  }

  private async takeSnapshot(
    index: number,
    term: number,
    timestamp: number,
    module: Uint8Array,
  ): Promise<void> {
    const { host } = this;
    const service = await host.service.snapshot();
    const recorded = await this.snapshotSets.run(async () => {
      // The leader's snapshot installed meanwhile is newer: this one is of no use (the log is purged past it).
      if (index <= host.module.node.snapshotIndex) return false;
      await recordSnapshotSet(host.store, { index, term, timestamp }, { module, service });
      await host.store.pruneSnapshots(host.config.snapshot.keep);
      return true;
    });
    if (recorded) host.log.info({ index, term, bytes: service.length + module.length }, 'snapshot taken');
    else {
      const installed = host.module.node.snapshotIndex;
      host.log.info(
        { index, term, installed },
        'snapshot dropped: the leader snapshot installed meanwhile is newer',
      );
    }
    host.input({ type: 'SNAPSHOT_TAKEN', index, term, data: encodeSnapshotParts({ module, service }) });
  }

  /** Hand the services this leadership (in apply order, after everything applied so far; never in replay). */
  private leadServices(term: number): void {
    const { host } = this;
    const service = host.service;
    if (!service.lead) return;
    const module = host.module;
    const leading = () =>
      host.running && host.module === module && module.node.isReadyLeader && module.node.term === term;
    const leader: LeaderContext = {
      propose: (entries) => host.propose(entries),
      get active() {
        return leading();
      },
    };
    this.inOrder(() => service.lead?.(leader), 'service leadership take-over');
  }
}
