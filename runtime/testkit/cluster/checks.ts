// The checks a TestCluster runs for free at the end of a test (besides the simulator's safety invariants,
// checked after every step):
// - REPLAY_DIFFERS: every running member's live service state equals a fresh replay of the committed log
//   up to what it applied — restored snapshots, restarts and installs included.
// - ACKNOWLEDGED_COMMAND_LOST / REPLY_NOT_FROM_LOG / APPLIED_TWICE: every command a client was answered
//   is in the committed log, its reply is the one the log's first copy of it produces, and every later
//   copy (a retry) is answered from the dedup table instead of being applied again.
// - NOT_LINEARIZABLE: the history of each service that declares a model is linearizable.

import type { ServiceReply } from '../../../actors/consensus/module-types.ts';
import type { LogEntry } from '../../../actors/log/log-entry.ts';
import type { Violation } from '../../sim/invariants.ts';
import { checkKvHistory, type HistoryOperation } from '../../sim/kv-history.ts';
import type { SimServices } from '../../sim/services.ts';
import type { Simulation } from '../../sim/simulation.ts';
import type { HistoryModel } from './models.ts';
import type { RecordedCommand } from './recorder.ts';

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, i) => byte === b[i]);

const keyOf = (sessionId: number, correlationId: number): string => `${sessionId}:${correlationId}`;

/** The reply the log's first copy of each command (by session and correlation id) produces. */
type FirstReplies = Map<string, Uint8Array>;

/** Replay the committed log on fresh services; compare members and collect the replies. */
export const checkReplay = (
  sim: Simulation,
  fresh: () => SimServices,
  fail: (violation: Omit<Violation, 'time'>) => void,
): FirstReplies => {
  const replies: FirstReplies = new Map();
  const committedMax = sim.checker.committedMax;
  // Members that run, by how far they applied (a stopped member's services are gone with its process).
  const targets = sim.memberIds
    .map((id) => ({ id, applied: sim.node(id)?.appliedIndex ?? -1 }))
    .filter((t) => t.applied >= 0)
    .sort((a, b) => a.applied - b.applied);
  const replay = fresh();
  replay.restore(null);
  let next = 1;
  const applyTo = (last: number): boolean => {
    const batch: LogEntry[] = [];
    for (; next <= last; next++) {
      const entry = sim.checker.committedEntry(next);
      if (!entry) {
        fail({
          invariant: 'REPLAY_INCOMPLETE',
          member: -1,
          detail: `the committed log has no entry ${next} of ${committedMax}: cannot replay past it`,
        });
        return false;
      }
      batch.push(entry);
    }
    if (batch.length > 0) note(replay.apply(batch, true), replies, fail);
    return true;
  };
  for (const { id, applied } of targets) {
    if (!applyTo(Math.min(applied, committedMax))) return replies;
    const live = sim.member(id).services.snapshot();
    if (!sameBytes(live, replay.snapshot())) {
      fail({
        invariant: 'REPLAY_DIFFERS',
        member: id,
        detail: `member ${id}'s service state at applied index ${applied} differs from a fresh replay of the committed log to ${applied}`,
      });
    }
  }
  applyTo(committedMax);
  return replies;
};

/** Remember each command's first reply; a later copy answered otherwise was applied twice. */
const note = (
  batch: readonly ServiceReply[],
  replies: FirstReplies,
  fail: (violation: Omit<Violation, 'time'>) => void,
): void => {
  for (const reply of batch) {
    if (reply.correlationId === 0 || reply.outcomeUnknown) continue;
    const key = keyOf(reply.sessionId, reply.correlationId);
    const first = replies.get(key);
    if (!first) {
      replies.set(key, reply.payload);
      continue;
    }
    if (!sameBytes(first, reply.payload)) {
      fail({
        invariant: 'APPLIED_TWICE',
        member: -1,
        detail: `session ${reply.sessionId}'s command ${reply.correlationId} is in the log more than once and a later copy was applied again (its reply differs) instead of answered from the dedup table`,
      });
    }
  }
};

/** Every command a client was answered with an applied reply is in the committed log, answered alike. */
export const checkAcknowledged = (
  commands: readonly RecordedCommand[],
  replies: ReadonlyMap<string, Uint8Array>,
  admit: SimServices['admit'],
  fail: (violation: Omit<Violation, 'time'>) => void,
): number => {
  let acknowledged = 0;
  for (const command of commands) {
    if (command.reply === null) continue;
    const admission = admit(command.body);
    // Refused at the service edge: answered without reaching the log.
    if (!admission.ok && sameBytes(admission.payload, command.reply)) continue;
    acknowledged++;
    const logged = [...command.sessions]
      .map((session) => replies.get(keyOf(session, command.correlationId)))
      .find((reply) => reply !== undefined);
    const what = `client ${command.client}'s command ${command.correlationId} (session ${[...command.sessions].join('/')})`;
    if (!logged) {
      fail({
        invariant: 'ACKNOWLEDGED_COMMAND_LOST',
        member: -1,
        detail: `${what} was answered at ${Math.round(command.ret ?? 0)} ms but is not in the committed log`,
      });
    } else if (!sameBytes(logged, command.reply)) {
      fail({
        invariant: 'REPLY_NOT_FROM_LOG',
        member: -1,
        detail: `${what} was answered at ${Math.round(command.ret ?? 0)} ms with a reply the committed log does not give it`,
      });
    }
  }
  return acknowledged;
};

export interface LinearizabilityVerdict {
  readonly model: string;
  readonly operations: number;
  readonly linearizable: boolean;
  readonly timedOut: boolean;
  readonly explanation?: string;
}

/** Check the history of the commands each model covers. */
export const checkModels = (
  commands: readonly RecordedCommand[],
  models: readonly HistoryModel[],
  timeoutMs: number,
): LinearizabilityVerdict[] =>
  models.map((model) => {
    const history: HistoryOperation[] = [];
    for (const command of commands) {
      const input = model.operation(command.body);
      if (input === null) continue;
      const output = command.reply === null ? null : model.output(input, command.reply);
      history.push({
        clientId: command.client,
        input,
        call: command.call,
        ret: output === null ? null : command.ret,
        output,
      });
    }
    const result = checkKvHistory(history, { timeoutMs });
    return {
      model: model.name,
      operations: history.length,
      linearizable: result.linearizable,
      timedOut: result.timedOut === true,
      ...(result.explanation ? { explanation: result.explanation } : {}),
    };
  });
