// The actor runtime as a member's ServiceHost (runtime/service-host.ts): worker shards plus the
// main-thread state that follows their outputs in log order — the cluster timer service and the outbox
// of actor-to-actor sends. Pass it as `MemberOptions.service`; the member applies committed entries,
// snapshots and restores it. The leader also calls `dueEntries(now)` each tick and appends what it
// returns, performs the EFFECT outputs it is told about (`onEffect`), and calls `takeOverAsLeader()` when
// it becomes leader. Followers call none of those: their timers and outbox follow the log all the same.

import { Outbox } from '../../actors/shard/outbox.ts';
import { pack, type ShardOutput, unpack } from '../../actors/shard/protocol.ts';
import {
  decodeShardSetSnapshot,
  encodeShardSetSnapshot,
  type ShardSetSnapshot,
} from '../../actors/shard/shard-set.ts';
import { ClusterTimers } from '../../actors/timers/cluster-timers.ts';
import { EntryKind, type LogEntry } from '../../machines/log-entry.ts';
import type { ServiceHost, ServiceReply } from '../service-host.ts';
import { type PendingEffect, ShardPool, type ShardPoolOptions } from './shard-pool.ts';

export const ACTOR_SNAPSHOT_VERSION = 1;

export interface ActorSnapshot {
  readonly shards: ShardSetSnapshot;
  readonly timers: ClusterTimers;
  readonly outbox: Outbox;
}

export const encodeActorSnapshot = (snapshot: ActorSnapshot): Uint8Array =>
  pack([
    ACTOR_SNAPSHOT_VERSION,
    encodeShardSetSnapshot(snapshot.shards),
    snapshot.timers.snapshot(),
    snapshot.outbox.snapshot(),
  ]);

export const decodeActorSnapshot = (bytes: Uint8Array): ActorSnapshot => {
  const decoded = unpack(bytes) as [number, Uint8Array, Uint8Array, Uint8Array];
  if (!Array.isArray(decoded) || decoded[0] !== ACTOR_SNAPSHOT_VERSION) {
    throw new Error(
      `actor runtime snapshot: version ${Array.isArray(decoded) ? decoded[0] : 'unknown'} is not supported (this build reads ${ACTOR_SNAPSHOT_VERSION})`,
    );
  }
  return {
    shards: decodeShardSetSnapshot(decoded[1]),
    timers: ClusterTimers.restore(decoded[2]),
    outbox: Outbox.restore(decoded[3]),
  };
};

/** A reply's payload to the client: `{ ok: true, value }` or `{ ok: false, error: { code, message } }`. */
export const encodeReply = (output: Extract<ShardOutput, { type: 'REPLY' }>): Uint8Array =>
  pack(output.ok ? { ok: true, value: output.value } : { ok: false, error: output.error });

export interface ActorServiceHostOptions extends Omit<ShardPoolOptions, 'snapshot'> {
  /** Called for each EFFECT output in log order (every member): only the live leader performs it. */
  readonly onEffect?: (effect: Extract<ShardOutput, { type: 'EFFECT' }>) => void;
}

export class ActorServiceHost implements ServiceHost {
  readonly name = 'actors';
  private current: ShardPool | null = null;
  private timerState = new ClusterTimers();
  private outboxState = new Outbox();
  /** Called for each EFFECT output; may be set later (e.g. once start-up replay is over). */
  onEffect: ActorServiceHostOptions['onEffect'];

  constructor(private readonly options: ActorServiceHostOptions) {
    this.onEffect = options.onEffect;
  }

  get pool(): ShardPool {
    if (!this.current) throw new Error('ActorServiceHost: restore(snapshot or null) before using the host');
    return this.current;
  }

  get timers(): ClusterTimers {
    return this.timerState;
  }

  get outbox(): Outbox {
    return this.outboxState;
  }

  /** Start the shards from a snapshot (`snapshot()`'s bytes) or empty; replaces any running shards. */
  async restore(bytes: Uint8Array | null): Promise<void> {
    const snapshot = bytes ? decodeActorSnapshot(bytes) : null; // throws before anything is replaced
    const { onEffect: _onEffect, ...poolOptions } = this.options;
    const next = await ShardPool.start({ ...poolOptions, snapshot: snapshot?.shards });
    await this.current?.close();
    this.current = next;
    this.timerState = snapshot?.timers ?? new ClusterTimers();
    this.outboxState = snapshot?.outbox ?? new Outbox();
  }

  /** Apply committed entries; every output, in log order. Timers and outbox follow them in order. */
  applyOutputs(entries: readonly LogEntry[]): Promise<ShardOutput[]> {
    return this.pool.apply(entries).then((outputs) => {
      for (const entry of entries)
        if (entry.kind === EntryKind.TIMER_EVENT) this.timerState.onTimerEvent(entry.payload);
      this.timerState.applyOutputs(outputs);
      this.outboxState.apply(entries, outputs);
      const onEffect = this.onEffect;
      if (onEffect) for (const output of outputs) if (output.type === 'EFFECT') onEffect(output);
      return outputs;
    });
  }

  /** ServiceHost: apply committed entries; the replies to client sessions. */
  async apply(entries: readonly LogEntry[]): Promise<ServiceReply[]> {
    const replies: ServiceReply[] = [];
    for (const output of await this.applyOutputs(entries)) {
      if (output.type === 'REPLY') {
        replies.push({
          sessionId: output.sessionId,
          correlationId: output.correlationId,
          payload: encodeReply(output),
        });
      }
    }
    return replies;
  }

  /** Leader: the entries to append now — due timer expiries and pending actor-to-actor sends. */
  dueEntries(now: number): { kind: EntryKind; payload: Uint8Array }[] {
    const due: { kind: EntryKind; payload: Uint8Array }[] = [];
    for (const timer of this.timerState.expire(now))
      due.push({ kind: EntryKind.TIMER_EVENT, payload: timer.payload });
    for (const payload of this.outboxState.takeUnappended())
      due.push({ kind: EntryKind.SERVICE_MESSAGE, payload });
    return due;
  }

  /** A member that just became leader: re-append what the previous leadership may not have (duplicates
   *  are applied once) and get the external effects it must perform again. */
  takeOverAsLeader(): Promise<PendingEffect[]> {
    this.timerState.resetInFlight();
    this.outboxState.resetAppended();
    return this.pool.pendingEffects();
  }

  /** ServiceHost: the whole actor state at the last applied entry (ordered after every earlier apply). */
  async snapshot(): Promise<Uint8Array> {
    const shards = await this.pool.snapshot();
    return encodeActorSnapshot({ shards, timers: this.timerState, outbox: this.outboxState });
  }

  async close(): Promise<void> {
    await this.current?.close();
    this.current = null;
  }
}
