// The actor runtime's state beside the shards: the cluster timers and the outbox of actor-to-actor sends.
// Both follow the shards' outputs and the committed entries in log order, identically on every member
// (worker-backed in runtime/actor-runtime/actor-service-host.ts, in-process in the simulator); only the
// leader appends what they hold. Pure.

import type { ClusterTimers } from '../consensus/cluster-timers.ts';
import { EntryKind, type LogEntry } from '../log/log-entry.ts';
import type { Outbox } from './outbox.ts';
import type { ShardOutput } from './protocol.ts';

/**
 * Timers and outbox follow one applied batch: for each entry, the outputs of the entries before it, then
 * its own expiry — so a timer scheduled and fired within one batch is scheduled before its expiry is seen.
 */
export const followApplied = (
  timers: ClusterTimers,
  outbox: Outbox,
  entries: readonly LogEntry[],
  outputs: readonly ShardOutput[],
): void => {
  const ordered = [...outputs].sort((a, b) => a.index - b.index);
  let next = 0;
  for (const entry of entries) {
    const from = next;
    while (next < ordered.length && ordered[next].index < entry.index) next++;
    if (next > from) timers.applyOutputs(ordered.slice(from, next));
    if (entry.kind === EntryKind.TIMER_EVENT) timers.onTimerEvent(entry.payload);
  }
  if (next < ordered.length) timers.applyOutputs(ordered.slice(next));
  outbox.apply(entries, outputs);
};

/** Leader: the entries to append now — due timer expiries and pending actor-to-actor sends. */
export const dueEntries = (
  timers: ClusterTimers,
  outbox: Outbox,
  now: number,
): { kind: EntryKind; payload: Uint8Array }[] => {
  const due: { kind: EntryKind; payload: Uint8Array }[] = [];
  for (const timer of timers.expire(now)) due.push({ kind: EntryKind.TIMER_EVENT, payload: timer.payload });
  for (const payload of outbox.takeUnappended()) due.push({ kind: EntryKind.SERVICE_MESSAGE, payload });
  return due;
};
