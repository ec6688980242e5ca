// A standalone actor runtime on a member's store: the ActorServiceHost (worker shards, cluster timers,
// outbox) recovered from the store at start-up and snapshotted into it. (A full member does the same
// through runtime/member.ts with the ActorServiceHost as its service.) Usage:
//
//   const actors = await ActorRuntime.open({ store, shards: 2, servicesModule });   // snapshot + replay
//   const outputs = await actors.apply(committedEntries);       // every member, in log order
//   leader only: send REPLY outputs, perform EFFECT outputs, append actors.dueEntries(now)
//   await actors.snapshot({ consensus, purge: true });          // by policy or on demand
//
// Replay never performs side effects: `open` drops the replay's outputs (replies were sent, effects
// are still pending in state); a new leader calls `takeOverAsLeader()` to resend what is pending.

import type { ShardOutput } from '../../actors/actor-runtime/protocol.ts';
import type { LogEntry } from '../../actors/log/log-entry.ts';
import type { MemberStore, SnapshotSet } from '../../persistence/index.ts';
import { CONSENSUS_MODULE_SERVICE_ID } from '../../persistence/index.ts';
import { ActorServiceHost, type ActorServiceHostOptions, decodeActorSnapshot } from './actor-service-host.ts';
import type { PendingEffect } from './shard-pool.ts';

/** The service id the actor runtime's snapshot is recorded under (the member's SERVICE_SNAPSHOT_ID). */
export const ACTOR_RUNTIME_SERVICE_ID = 0;

/** Entries per batch when replaying the log at start-up. */
const REPLAY_BATCH = 1000;

export interface ActorRuntimeOptions extends ActorServiceHostOptions {
  readonly store: MemberStore;
}

export interface OpenReport {
  /** Log index of the snapshot loaded (0: none). */
  readonly snapshotIndex: number;
  /** Entries replayed after it. */
  readonly replayed: number;
  /** Snapshot sets passed over (newest first) and why. */
  readonly skipped: readonly string[];
  /** The consensus module's snapshot from the same set, for the caller to restore. */
  readonly consensus: Uint8Array | undefined;
}

export class ActorRuntime {
  private constructor(
    readonly host: ActorServiceHost,
    private readonly store: MemberStore,
    readonly report: OpenReport,
  ) {}

  /**
   * Recover: the latest valid snapshot set whose actor snapshot decodes (an undecodable one is marked
   * invalid in the recording log, falling back to the set before it), then replay the log after it.
   * Replay performs no side effects: its replies are dropped and `onEffect` is not called for it.
   */
  static async open(options: ActorRuntimeOptions): Promise<ActorRuntime> {
    const { store, onEffect, ...hostOptions } = options;
    const skipped: string[] = [];
    for (;;) {
      const plan = store.recoveryPlan();
      skipped.push(...plan.skipped.map((s) => `snapshot set at ${s.logIndex}: ${s.reason}`));
      let bytes: Uint8Array | null = null;
      let consensus: Uint8Array | undefined;
      if (plan.snapshotSet) {
        const actorPart = plan.snapshots.find((s) => s.entry.serviceId === ACTOR_RUNTIME_SERVICE_ID);
        const consensusPart = plan.snapshots.find((s) => s.entry.serviceId === CONSENSUS_MODULE_SERVICE_ID);
        try {
          if (!actorPart) throw new Error('the set has no actor runtime snapshot');
          bytes = store.snapshots.load(actorPart.entry.snapshotId);
          const index = decodeActorSnapshot(bytes).shards.index;
          if (index !== plan.snapshotSet.logIndex) {
            throw new Error(`its shards were taken at ${index}, the set says ${plan.snapshotSet.logIndex}`);
          }
          consensus = consensusPart ? store.snapshots.load(consensusPart.entry.snapshotId) : undefined;
        } catch (error) {
          skipped.push(`snapshot set at ${plan.snapshotSet.logIndex}: ${(error as Error).message}`);
          await store.recordingLog.invalidateLatestSnapshot();
          continue;
        }
      }
      const replayHost = new ActorServiceHost(hostOptions);
      await replayHost.restore(bytes);
      let replayed = 0;
      try {
        for (let from = plan.replayFrom; from <= plan.replayTo; from += REPLAY_BATCH) {
          const entries = store.log.read(from, Math.min(plan.replayTo, from + REPLAY_BATCH - 1));
          await replayHost.applyOutputs(entries);
          replayed += entries.length;
        }
      } catch (error) {
        await replayHost.close();
        throw error;
      }
      // Live from here on: effects decided from now are reported.
      replayHost.onEffect = onEffect;
      const snapshotIndex = plan.snapshotSet?.logIndex ?? 0;
      return new ActorRuntime(replayHost, store, { snapshotIndex, replayed, skipped, consensus });
    }
  }

  get lastApplied(): number {
    return this.host.pool.lastApplied;
  }

  get timers() {
    return this.host.timers;
  }

  get outbox() {
    return this.host.outbox;
  }

  get pool() {
    return this.host.pool;
  }

  /** Apply committed entries (every member, log order); all their outputs. */
  apply(entries: readonly LogEntry[]): Promise<ShardOutput[]> {
    return this.host.applyOutputs(entries);
  }

  /** Leader: the entries to append now — due timer expiries and pending actor-to-actor sends. */
  dueEntries(now: number) {
    return this.host.dueEntries(now);
  }

  /** A member that just became leader: see ActorServiceHost.takeOverAsLeader. */
  takeOverAsLeader(): Promise<PendingEffect[]> {
    return this.host.takeOverAsLeader();
  }

  /**
   * Snapshot at the last applied index: the actor snapshot and the consensus module's (`consensus`) are
   * saved, recorded as one set in the recording log, and with `purge` the log up to that index is
   * removed. Ordered after every earlier `apply`.
   */
  async snapshot(options: { consensus: Uint8Array; purge?: boolean }): Promise<SnapshotSet> {
    const bytes = await this.host.snapshot();
    const index = decodeActorSnapshot(bytes).shards.index;
    const entry = index > 0 ? this.store.log.entry(index) : undefined;
    const term = entry?.term ?? this.store.log.purgeBoundary.term;
    const timestamp = entry?.timestamp ?? 0;
    const descriptor = { logIndex: index, term, timestamp };
    const actorInfo = await this.store.snapshots.save(
      { ...descriptor, serviceId: ACTOR_RUNTIME_SERVICE_ID },
      bytes,
    );
    const consensusInfo = await this.store.snapshots.save(
      { ...descriptor, serviceId: CONSENSUS_MODULE_SERVICE_ID },
      options.consensus,
    );
    const set = await this.store.recordingLog.appendSnapshotSet({
      ...descriptor,
      snapshots: [
        { serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: consensusInfo.snapshotId },
        { serviceId: ACTOR_RUNTIME_SERVICE_ID, snapshotId: actorInfo.snapshotId },
      ],
    });
    if (options.purge) await this.store.log.purgeTo(index, term);
    return set;
  }

  close(): Promise<void> {
    return this.host.close();
  }
}

/** When to snapshot by policy: every `entries` applied entries or `bytes` applied payload bytes. */
export class SnapshotPolicy {
  private entries = 0;
  private bytes = 0;

  constructor(private readonly limits: { readonly entries?: number; readonly bytes?: number }) {
    for (const [name, value] of Object.entries(limits)) {
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw new RangeError(`SnapshotPolicy: ${name} must be a positive integer or left out, got ${value}`);
      }
    }
  }

  /** Count applied entries; true when a snapshot is due (the counters restart). */
  record(entries: readonly LogEntry[]): boolean {
    this.entries += entries.length;
    for (const entry of entries) this.bytes += entry.payload.byteLength;
    const due =
      (this.limits.entries !== undefined && this.entries >= this.limits.entries) ||
      (this.limits.bytes !== undefined && this.bytes >= this.limits.bytes);
    if (due) {
      this.entries = 0;
      this.bytes = 0;
    }
    return due;
  }
}
