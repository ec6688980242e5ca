// A member's Prometheus metrics (prom-client), served on its admin HTTP port at GET /metrics. Counters and
// histograms are fed from the consensus module's inputs and effects, one pass over each batch the member
// already handles (per command a type switch and a counter; the histograms observe once per batch, not per
// entry); gauges are read when scraped.
//
//   chorus_committed_entries_total      entries committed here (rate = commit rate)
//   chorus_append_latency_seconds       a batch's appends handed to the store until their flush (APPENDED)
//   chorus_commit_latency_seconds       leader: a batch's entries appended until a commit covered them
//   chorus_elections_total              elections begun here (the election chart entering CANVASS)
//   chorus_role{role}                   1 for the member's role, 0 for the others
//   chorus_term, chorus_sessions, chorus_busy_answers_total, chorus_shard_queue_depth,
//   chorus_snapshot_duration_seconds, chorus_log_entries, chorus_log_first_index, chorus_log_last_index,
//   and prom-client's process and Node.js metrics (nodejs_eventloop_lag_*: event-loop lag).

import { performance } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ModuleEffect, ModuleInput } from '../../actors/consensus/consensus-module.ts';
import type { InspectedMember } from '../inspector/member-view.ts';

const ROLES = ['FOLLOWER', 'CANDIDATE', 'LEADER'] as const;
const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

/** Where the gauges read from: the member (its module may be replaced on a rejoin) and its shard queue. */
export interface MetricsSource extends InspectedMember {
  /** Entries handed to the shards and not applied yet (0 for a service without shards). */
  shardQueueDepth(): number;
}

export class MemberMetrics {
  readonly registry = new Registry();
  private readonly committed: Counter;
  private readonly appendLatency: Histogram;
  private readonly commitLatency: Histogram;
  private readonly elections: Counter;
  private readonly busy: Counter;
  private readonly snapshotDuration: Histogram;
  /** Store writes in flight: [the last APPEND seq of a batch, when it was handed over], in seq order. */
  private readonly writes: [number, number][] = [];
  /** Leader: [the last index a batch appended, when], in index order, until a commit covers it. */
  private readonly uncommitted: [number, number][] = [];
  private snapshotStartedAt: number | null = null;
  /** Client commands taken and not yet answered (reply or BUSY), by client connection. */
  private readonly inFlight = new Map<number, number>();
  private commitIndex: number;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ member: String(source.memberId) });
    collectDefaultMetrics({ register: this.registry });
    this.commitIndex = source.module.node.commitIndex;
    this.committed = new Counter({
      name: 'chorus_committed_entries_total',
      help: 'Log entries committed on this member',
      registers,
    });
    this.appendLatency = new Histogram({
      name: 'chorus_append_latency_seconds',
      help: 'From an append handed to the log store until it was flushed',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.commitLatency = new Histogram({
      name: 'chorus_commit_latency_seconds',
      help: 'Leader: from an entry appended until a quorum had flushed it',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.elections = new Counter({
      name: 'chorus_elections_total',
      help: 'Elections begun on this member (its election chart entering CANVASS)',
      registers,
    });
    this.busy = new Counter({
      name: 'chorus_busy_answers_total',
      help: 'Client commands answered BUSY (back-pressure, or not taken between leaders)',
      registers,
    });
    this.snapshotDuration = new Histogram({
      name: 'chorus_snapshot_duration_seconds',
      help: 'From a snapshot asked of the services until it was recorded',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers,
    });
    new Gauge({
      name: 'chorus_role',
      help: '1 for the role this member has now, 0 for the others',
      labelNames: ['role'],
      registers,
      collect() {
        const role = source.module.role;
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('chorus_term', 'The current term', () => source.module.node.term);
    gauge('chorus_commands_in_flight', 'Client commands taken and not yet answered', () => {
      let total = 0;
      for (const n of this.inFlight.values()) total += n;
      return total;
    });
    gauge(
      'chorus_sessions',
      'Client sessions open or opening on this member',
      () => source.module.activeSessions,
    );
    gauge('chorus_shard_queue_depth', 'Committed entries handed to the shards, not yet applied', () =>
      source.shardQueueDepth(),
    );
    gauge('chorus_log_first_index', 'First index the log store holds', () => source.store.log.firstIndex);
    gauge('chorus_log_last_index', 'Last index the log store holds', () => source.store.log.lastIndex);
    gauge('chorus_log_entries', 'Entries the log store holds (the rest were purged after snapshots)', () => {
      const log = source.store.log;
      return log.lastIndex === 0 ? 0 : log.lastIndex - log.firstIndex + 1;
    });
    gauge('chorus_commit_position', 'The commit position', () => source.module.node.commitIndex);
  }

  /** One batch the module handled: its inputs and the effects it emitted. */
  observe(inputs: readonly ModuleInput[], effects: readonly ModuleEffect[]): void {
    const now = performance.now();
    for (const input of inputs) {
      if (input.type === 'CLIENT') {
        const client = input.input;
        if (client.type === 'SESSION_MESSAGE')
          this.inFlight.set(client.connectionId, (this.inFlight.get(client.connectionId) ?? 0) + 1);
        else if (client.type === 'CONNECTION_CLOSED') this.inFlight.delete(client.connectionId);
      } else if (input.type === 'APPENDED') {
        // One completion acknowledges every append up to its seq: observed once, from the oldest.
        const oldest = settle(this.writes, input.seq);
        if (oldest !== null) this.appendLatency.observe((now - oldest) / 1000);
      } else if (input.type === 'SNAPSHOT_TAKEN' && this.snapshotStartedAt !== null) {
        this.snapshotDuration.observe((now - this.snapshotStartedAt) / 1000);
        this.snapshotStartedAt = null;
      }
    }
    let lastSeq = -1;
    let lastIndex = -1;
    for (const effect of effects) {
      switch (effect.type) {
        case 'APPEND':
          lastSeq = effect.seq;
          lastIndex = effect.entries[effect.entries.length - 1]?.index ?? lastIndex;
          break;
        case 'COMMIT':
          this.onCommit(effect.commitIndex, now);
          break;
        case 'CLIENT_BUSY':
          this.busy.inc();
          this.answered(effect.connectionId);
          break;
        case 'CLIENT_REPLY':
          this.answered(effect.connectionId);
          break;
        case 'TAKE_SNAPSHOT':
          this.snapshotStartedAt = now;
          break;
        case 'ELECTION_STATE_CHANGE':
          if (effect.to === 'CANVASS') this.elections.inc();
          break;
        case 'TRUNCATE':
        case 'ROLE_CHANGE':
          // Entries of an ended leadership commit (or not) under the next one: not this one's latency.
          this.uncommitted.length = 0;
          break;
      }
    }
    // Bounded: a store or a quorum that never answers must not grow the tables.
    if (lastSeq >= 0 && this.writes.length < 10_000) this.writes.push([lastSeq, now]);
    if (lastIndex >= 0 && this.uncommitted.length < 10_000 && this.source.module.role === 'LEADER')
      this.uncommitted.push([lastIndex, now]);
  }

  private answered(connectionId: number): void {
    const left = (this.inFlight.get(connectionId) ?? 0) - 1;
    if (left > 0) this.inFlight.set(connectionId, left);
    else this.inFlight.delete(connectionId);
  }

  /** Commands a client connection sent that this member has not answered yet (0 when none). */
  inFlightOf(connectionId: number): number {
    return this.inFlight.get(connectionId) ?? 0;
  }

  private onCommit(commitIndex: number, now: number): void {
    if (commitIndex > this.commitIndex) this.committed.inc(commitIndex - this.commitIndex);
    this.commitIndex = Math.max(this.commitIndex, commitIndex);
    const oldest = settle(this.uncommitted, commitIndex);
    if (oldest !== null) this.commitLatency.observe((now - oldest) / 1000);
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** Drop the leading [key, at] pairs with key ≤ upTo; the first one's `at`, or null if none. */
const settle = (queue: [number, number][], upTo: number): number | null => {
  let done = 0;
  while (done < queue.length && queue[done][0] <= upTo) done++;
  if (done === 0) return null;
  const oldest = queue[0][1];
  queue.splice(0, done);
  return oldest;
};
