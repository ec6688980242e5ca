// What the inspector shows of one member, read from the objects that drive it: the consensus node's
// election chart and module machine (their states, not copies), the leader's follower progress, the
// session manager's session charts, the log store. Transition records come from the module's own effects
// (ELECTION_STATE_CHANGE, ROLE_CHANGE, MODULE_STATE_CHANGE carry the chart event that moved them); session
// transitions are found by comparing the session charts' states after the inputs that can move them.

import { performance } from 'node:perf_hooks';
import type { ConsensusModule, ModuleEffect, ModuleInput } from '../../actors/consensus/consensus-module.ts';
import { EntryKind, entryKindName } from '../../actors/log/log-entry.ts';
import { decodeSessionMessage } from '../../actors/log/session-message.ts';
import type { MemberStore } from '../../persistence/index.ts';
import { HttpError } from './http.ts';

/** The parts of a member the views read (runtime/member.ts). */
export interface InspectedMember {
  readonly memberId: number;
  readonly module: ConsensusModule;
  readonly store: MemberStore;
}

export type MachineKind = 'election' | 'module' | 'role' | 'session';

export interface TransitionRecord {
  readonly machine: MachineKind;
  /** The session id, for a session's transition. */
  readonly id?: number;
  readonly from: string;
  readonly to: string;
  readonly event: string;
  /** Wall-clock time the member observed it (ms since the epoch). */
  readonly atMs: number;
}

/** Transitions kept for GET /state. */
export const KEPT_TRANSITIONS = 50;
/** Most entries one GET /log returns. */
export const MAX_LOG_ENTRIES = 1000;

export const memberState = (
  member: InspectedMember,
  transitions: readonly TransitionRecord[],
  inFlightOf: (connectionId: number) => number,
) => {
  const { module } = member;
  const { node } = module;
  const role = module.role;
  const now = performance.now();
  return {
    memberId: member.memberId,
    role,
    term: node.term,
    leaderId: module.storageFailed === null ? node.leaderId : null,
    electionState: node.electionState,
    moduleState: node.moduleState,
    appendPosition: node.lastIndex,
    commitPosition: node.commitIndex,
    appliedPosition: node.appliedIndex,
    storageFailure: module.storageFailed,
    followers:
      role === 'LEADER'
        ? node.followerProgress().map((f) => ({ ...f, lag: Math.max(0, node.lastIndex - f.matchIndex) }))
        : [],
    sessions: module.listSessions().map((s) => {
      const activityAt = module.sessionActivityAt(s.id) ?? 0;
      return {
        id: s.id,
        state: s.state,
        principal: s.principal,
        connected: s.connectionId !== null,
        inFlight: s.connectionId === null ? 0 : inFlightOf(s.connectionId),
        lastActivityMs: activityAt > 0 ? Math.max(0, Math.round(now - activityAt)) : null,
      };
    }),
    transitions,
  };
};

export type MemberState = ReturnType<typeof memberState>;

/** GET /log?from=N&limit=M: what the store holds, with each entry's kind, session and size. */
export const logPage = (member: InspectedMember, from: number | null, limit: number) => {
  const log = member.store.log;
  const { firstIndex, lastIndex } = log;
  const commitIndex = member.module.node.commitIndex;
  const start = from ?? Math.max(firstIndex, lastIndex - limit + 1);
  if (lastIndex === 0 && start <= 1) return { firstIndex, lastIndex, commitIndex, entries: [] };
  if (start > lastIndex)
    throw new HttpError(404, `index ${start} is beyond the log (its last index is ${lastIndex})`);
  if (start < firstIndex)
    throw new HttpError(
      404,
      `entries before ${firstIndex} were purged after a snapshot (the log holds ${firstIndex}..${lastIndex})`,
    );
  const entries = log.read(start, Math.min(lastIndex, start + limit - 1)).map((entry) => ({
    index: entry.index,
    term: entry.term,
    timestamp: entry.timestamp,
    kind: entryKindName(entry.kind),
    session: entry.kind === EntryKind.SESSION_MESSAGE ? sessionOf(entry.payload) : null,
    size: entry.payload.length,
    committed: entry.index <= commitIndex,
  }));
  return { firstIndex, lastIndex, commitIndex, entries };
};

/** The session id in a SESSION_MESSAGE payload's header (null if the header does not decode). */
const sessionOf = (payload: Uint8Array): number | null => {
  try {
    return decodeSessionMessage(payload).sessionId;
  } catch {
    return null;
  }
};

/**
 * Transition records of one batch of the module's effects and, with `sessions`, whether the batch may have
 * moved a session chart (then `sessionCause` names the input or effect that may have; without, null).
 */
export const transitionsOf = (
  inputs: readonly ModuleInput[],
  effects: readonly ModuleEffect[],
  atMs: number,
  sessions: boolean,
): { records: TransitionRecord[]; sessionCause: string | null } => {
  const records: TransitionRecord[] = [];
  // Without `sessions` the cause is taken as found already, so nothing looks for one.
  let sessionCause: string | null = sessions ? null : '';
  for (const input of sessions ? inputs : []) {
    if (input.type === 'CLIENT') {
      const type = input.input.type;
      if (type !== 'SESSION_MESSAGE' && type !== 'KEEPALIVE') sessionCause ??= type;
    } else if (input.type === 'TICK' || input.type === 'STORAGE_FAILED') sessionCause ??= input.type;
  }
  for (const effect of effects) {
    switch (effect.type) {
      case 'ELECTION_STATE_CHANGE':
        records.push({ machine: 'election', ...change(effect), atMs });
        sessionCause ??= 'ROLE_CHANGED';
        break;
      case 'ROLE_CHANGE':
        records.push({ machine: 'role', ...change(effect), atMs });
        break;
      case 'MODULE_STATE_CHANGE':
        records.push({ machine: 'module', ...change(effect), atMs });
        break;
      case 'APPLY':
        if (sessionCause === null)
          for (const entry of effect.entries)
            if (entry.kind === EntryKind.SESSION_OPEN || entry.kind === EntryKind.SESSION_CLOSE) {
              sessionCause = `${entryKindName(entry.kind)} committed`;
              break;
            }
        break;
    }
  }
  return { records, sessionCause: sessions ? sessionCause : null };
};

const change = (effect: { from: string; to: string; event?: string }) => ({
  from: effect.from,
  to: effect.to,
  event: effect.event ?? '',
});

/** Session charts' states by id, to compare after a batch that may have moved them. */
export const sessionStates = (module: ConsensusModule): Map<number, string> =>
  new Map(module.listSessions().map((s) => [s.id, s.state]));

/** The session transitions between two observations (a session that appeared comes from NONE). */
export const sessionTransitions = (
  before: ReadonlyMap<number, string>,
  after: ReadonlyMap<number, string>,
  event: string,
  atMs: number,
): TransitionRecord[] => {
  const records: TransitionRecord[] = [];
  for (const [id, to] of after) {
    const from = before.get(id) ?? 'NONE';
    if (from !== to) records.push({ machine: 'session', id, from, to, event, atMs });
  }
  for (const [id, from] of before)
    if (!after.has(id)) records.push({ machine: 'session', id, from, to: 'REMOVED', event, atMs });
  return records;
};
