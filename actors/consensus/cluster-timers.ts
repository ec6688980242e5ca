// The cluster timer service, as pure state. Every member keeps the same set of pending timers by applying
// its shards' TIMER_SCHEDULE / TIMER_CANCEL outputs and the committed TIMER_EVENT entries in log order.
// Only the leader asks `expire(now)` which timers are due at cluster time `now`, and appends one
// TIMER_EVENT entry per timer; the timer stays pending (marked in flight) until that entry is applied.
// After a leader change the new leader clears the in-flight marks and appends again: a second
// TIMER_EVENT for the same timer is ignored by the shard, so an expiry is applied exactly once.

import type { ShardOutput } from '../actor-runtime/protocol.ts';
import { timerId as formatTimerId, pack, unpack } from '../actor-runtime/protocol.ts';
import { MinHeap } from './min-heap.ts';

export const TIMERS_SNAPSHOT_VERSION = 1;

export interface DueTimer {
  readonly timerId: string;
  readonly deadline: number;
  /** The TIMER_EVENT payload to append. */
  readonly payload: Uint8Array;
}

interface Pending {
  readonly deadline: number;
  readonly payload: Uint8Array;
  inFlight: boolean;
}

type HeapItem = readonly [deadline: number, timerId: string];

const before = (a: HeapItem, b: HeapItem): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);

/** The id of the timer a TIMER_EVENT payload (`[address, seq]`) fires. */
export const timerIdOfPayload = (payload: Uint8Array): string => {
  const [address, seq] = unpack(payload) as [string, number];
  return formatTimerId(address, seq);
};

export class ClusterTimers {
  private readonly pending = new Map<string, Pending>();
  /** Min-heap on (deadline, timerId) with lazy deletion: `pending` is the truth. */
  private readonly heap = new MinHeap<HeapItem>(before);

  get size(): number {
    return this.pending.size;
  }

  has(timerId: string): boolean {
    return this.pending.has(timerId);
  }

  schedule(timerId: string, deadline: number, payload: Uint8Array): void {
    if (!Number.isFinite(deadline))
      throw new RangeError(`ClusterTimers.schedule: deadline of ${timerId} must be finite`);
    this.pending.set(timerId, { deadline, payload, inFlight: false });
    this.heap.push([deadline, timerId]);
  }

  cancel(timerId: string): void {
    this.pending.delete(timerId);
  }

  /** Apply the timer requests among a batch of shard outputs (every member, in log order). */
  applyOutputs(outputs: readonly ShardOutput[]): void {
    for (const output of outputs) {
      if (output.type === 'TIMER_SCHEDULE') this.schedule(output.timerId, output.deadline, output.payload);
      else if (output.type === 'TIMER_CANCEL') this.cancel(output.timerId);
    }
  }

  /** A committed TIMER_EVENT entry: the timer has fired on every member. */
  onTimerEvent(payload: Uint8Array): void {
    this.pending.delete(timerIdOfPayload(payload));
  }

  /** Leader: the timers due at cluster time `now` that it has not appended yet, in (deadline, id) order. */
  expire(now: number): DueTimer[] {
    const due: DueTimer[] = [];
    while ((this.heap.peek()?.[0] ?? Number.POSITIVE_INFINITY) <= now) {
      const [deadline, timerId] = this.heap.pop()!;
      const timer = this.pending.get(timerId);
      if (!timer || timer.inFlight || timer.deadline !== deadline) continue; // cancelled or rescheduled
      timer.inFlight = true;
      due.push({ timerId, deadline, payload: timer.payload });
    }
    return due;
  }

  /** A new leader (or a leader whose appends were lost) appends every due timer again. */
  resetInFlight(): void {
    for (const [timerId, timer] of this.pending) {
      if (!timer.inFlight) continue;
      timer.inFlight = false;
      this.heap.push([timer.deadline, timerId]);
    }
  }

  /** The earliest deadline not yet appended, for arming the leader's wake-up. */
  nextDeadline(): number | undefined {
    for (let top = this.heap.peek(); top !== undefined; top = this.heap.peek()) {
      const [deadline, timerId] = top;
      const timer = this.pending.get(timerId);
      if (timer && !timer.inFlight && timer.deadline === deadline) return deadline;
      this.heap.pop();
    }
    return undefined;
  }

  /** Pending timers in (deadline, id) order. */
  list(): DueTimer[] {
    return [...this.pending]
      .map(([timerId, t]) => ({ timerId, deadline: t.deadline, payload: t.payload }))
      .sort((a, b) => (before([a.deadline, a.timerId], [b.deadline, b.timerId]) ? -1 : 1));
  }

  /** Canonical bytes: in-flight marks are not state (a restarted member is no longer leader). */
  snapshot(): Uint8Array {
    return pack([TIMERS_SNAPSHOT_VERSION, this.list().map((t) => [t.timerId, t.deadline, t.payload])]);
  }

  static restore(bytes: Uint8Array): ClusterTimers {
    const decoded = unpack(bytes) as [number, [string, number, Uint8Array][]];
    if (!Array.isArray(decoded) || decoded[0] !== TIMERS_SNAPSHOT_VERSION) {
      throw new Error(
        `ClusterTimers.restore: unsupported snapshot version (this build reads ${TIMERS_SNAPSHOT_VERSION})`,
      );
    }
    const timers = new ClusterTimers();
    for (const [timerId, deadline, payload] of decoded[1]) timers.schedule(timerId, deadline, payload);
    return timers;
  }
}
