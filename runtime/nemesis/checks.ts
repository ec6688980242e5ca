// What a nemesis run must show afterwards. Every member's store is opened with the persistence layer
// (members stopped: the start-up scan checks every checksum), and compared with what the clients saw:
//
// - logs: the entries every pair of members both hold are identical, and all end at the same index;
// - replay: each member's latest snapshot plus the log after it, applied to a fresh service host, ends in
//   the same service state on every member (byte-equal snapshots), and KV keys equal the final reads;
// - exactly once: every acknowledged command's first application in the replay answers with the very bytes
//   the application got, every application of one command answers alike, and with the log whole from
//   index 1 an acknowledged command missing from it is a lost command;
// - services: KV histories are linearizable (runtime/sim/linearizability.ts); an acknowledged counter
//   increment answers a count no other acknowledged increment of that counter answered, and the final
//   count lies between the acknowledged increments and those plus the ones of unknown outcome; an order
//   book never answers an acknowledged request as a resend (`duplicate`) or a reused clientOrderId;
//   DUPLICATE never reaches the application;
// - elections: no two members led in one term; no member exited unless the nemesis made it.

import { unpack } from 'msgpackr';
import type { ServiceReply } from '../../actors/consensus/module-types.ts';
import type { LogEntry } from '../../actors/log/log-entry.ts';
import { CONSENSUS_MODULE_SERVICE_ID, openMemberStore } from '../../persistence/index.ts';
import { ActorServiceHost } from '../actor-runtime/actor-service-host.ts';
import { decodeServiceReply } from '../actor-runtime/service-client.ts';
import { KvServiceHost, type ServiceHost } from '../service-host.ts';
import { checkKvHistory, type HistoryOperation } from '../sim/kv-history.ts';
import type { CommandRecord } from './workloads.ts';

export interface Violation {
  readonly check: string;
  readonly detail: string;
}

/** One member's store, as read after the run. */
export interface MemberLog {
  readonly id: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** The latest valid snapshot set's index (0: none) and its service data. */
  readonly snapshotIndex: number;
  readonly snapshotData: Uint8Array | null;
  readonly entries: readonly LogEntry[];
}

export const readMemberLog = async (id: number, dir: string, mapSizeBytes: number): Promise<MemberLog> => {
  const store = await openMemberStore(dir, { mapSizeBytes });
  try {
    const set = store.recordingLog.latestValidSnapshotSet();
    const service = set?.snapshots.find((s) => s.serviceId !== CONSENSUS_MODULE_SERVICE_ID);
    const { firstIndex, lastIndex } = store.log;
    return {
      id,
      firstIndex,
      lastIndex,
      snapshotIndex: set?.logIndex ?? 0,
      snapshotData: service ? Buffer.from(store.snapshots.load(service.snapshotId)) : null,
      entries: lastIndex >= firstIndex ? store.log.read(firstIndex, lastIndex) : [],
    };
  } finally {
    await store.close();
  }
};

const sameEntry = (a: LogEntry, b: LogEntry): boolean =>
  a.index === b.index &&
  a.term === b.term &&
  a.kind === b.kind &&
  a.timestamp === b.timestamp &&
  Buffer.compare(Buffer.from(a.payload), Buffer.from(b.payload)) === 0;

/** The logs agree wherever two members hold the same index, and end at one index. */
export const checkLogs = (logs: readonly MemberLog[]): Violation[] => {
  const violations: Violation[] = [];
  const last = new Set(logs.map((l) => l.lastIndex));
  if (last.size > 1)
    violations.push({
      check: 'logs identical',
      detail: `members end at different indexes after quiescence: ${logs.map((l) => `${l.id}:${l.lastIndex}`).join(' ')}`,
    });
  const [reference, ...rest] = logs;
  for (const other of rest) {
    const from = Math.max(reference.firstIndex, other.firstIndex);
    const to = Math.min(reference.lastIndex, other.lastIndex);
    for (let index = from; index <= to; index++) {
      const a = reference.entries[index - reference.firstIndex];
      const b = other.entries[index - other.firstIndex];
      if (!sameEntry(a, b)) {
        violations.push({
          check: 'logs identical',
          detail: `index ${index}: member ${reference.id} has term ${a.term} kind ${a.kind}, member ${other.id} has term ${b.term} kind ${b.kind}${a.term === b.term && a.kind === b.kind ? ' (payload or timestamp differs)' : ''}`,
        });
        break;
      }
    }
  }
  return violations;
};

export interface Replay {
  readonly memberId: number;
  /** The first index replayed (the snapshot's index + 1). */
  readonly from: number;
  readonly state: Uint8Array;
  readonly replies: readonly ServiceReply[];
  /** The KV host after replay (kv runs), for the final reads. */
  readonly kv: KvServiceHost | null;
}

/** Replay one member's snapshot + log through a fresh host of the service the cluster ran. */
export const replayMember = async (
  log: MemberLog,
  services: string | undefined,
  shards: number,
): Promise<Replay> => {
  const host: ServiceHost = services
    ? await ActorServiceHost.open({ servicesModule: services, shards })
    : new KvServiceHost();
  try {
    await host.restore(log.snapshotData);
    const from = log.snapshotIndex + 1;
    const entries = log.entries.filter((e) => e.index >= from);
    if (entries.length > 0 && entries[0].index !== from)
      throw new Error(
        `member ${log.id}: the log starts at ${entries[0].index}, after its snapshot at ${from - 1}`,
      );
    const replies: ServiceReply[] = [];
    for (let at = 0; at < entries.length; at += 500) {
      replies.push(...(await host.apply(entries.slice(at, at + 500), { replies: true })));
    }
    const state = Buffer.from(await host.snapshot());
    return { memberId: log.id, from, state, replies, kv: host instanceof KvServiceHost ? host : null };
  } finally {
    await host.close?.();
  }
};

const key = (sessionId: number, correlationId: number) => `${sessionId}/${correlationId}`;

/** Every member's replay ends in one state; KV keys equal what the final reads returned. */
export const checkReplays = (
  replays: readonly Replay[],
  finalReads: ReadonlyMap<string, unknown>,
): Violation[] => {
  const violations: Violation[] = [];
  const [first, ...rest] = replays;
  for (const other of rest) {
    if (Buffer.compare(Buffer.from(first.state), Buffer.from(other.state)) !== 0)
      violations.push({
        check: 'replay equals the final state',
        detail: `member ${first.memberId} (replayed from ${first.from}) and member ${other.memberId} (from ${other.from}) end in different service states`,
      });
  }
  for (const replay of replays) {
    if (!replay.kv) continue;
    for (const [k, value] of finalReads) {
      const replayed = replay.kv.service.get(k);
      if (replayed !== value)
        violations.push({
          check: 'replay equals the final state',
          detail: `member ${replay.memberId}: replay gives ${k} = ${JSON.stringify(replayed)}, the final read gave ${JSON.stringify(value)}`,
        });
    }
  }
  return violations;
};

export interface ExactlyOnceSummary {
  readonly acknowledged: number;
  /** Acknowledged commands found in the replayed log (the rest were applied before its snapshot). */
  readonly verifiedInLog: number;
  readonly replayedFrom: number;
  /** Commands with more than one copy in the replayed log (client resends that reached it): de-duplicated. */
  readonly resent: number;
}

/** Acknowledged commands against the replay that starts earliest. */
export const checkExactlyOnce = (
  records: readonly CommandRecord[],
  replays: readonly Replay[],
): { violations: Violation[]; summary: ExactlyOnceSummary } => {
  const violations: Violation[] = [];
  const replay = [...replays].sort((a, b) => a.from - b.from)[0];
  const applied = new Map<string, Uint8Array[]>();
  for (const r of replay.replies) {
    const list = applied.get(key(r.sessionId, r.correlationId)) ?? [];
    list.push(r.payload);
    applied.set(key(r.sessionId, r.correlationId), list);
  }
  for (const [k, list] of applied) {
    if (list.some((p) => Buffer.compare(Buffer.from(p), Buffer.from(list[0])) !== 0))
      violations.push({
        check: 'exactly once',
        detail: `command ${k} (session/correlation) answered differently by its copies in the log (applied more than once, or a resend not answered with the original reply)`,
      });
  }
  let acknowledged = 0;
  let verified = 0;
  for (const record of records) {
    if (record.reply === null) continue;
    acknowledged++;
    const found = applied.get(key(record.sessionId, record.correlationId));
    if (!found) {
      if (replay.from === 1)
        violations.push({
          check: 'exactly once',
          detail: `acknowledged ${record.service} command ${key(record.sessionId, record.correlationId)} ${JSON.stringify(record.input)} is not in the log`,
        });
      continue;
    }
    verified++;
    if (Buffer.compare(Buffer.from(found[0]), Buffer.from(record.reply)) !== 0)
      violations.push({
        check: 'exactly once',
        detail: `command ${key(record.sessionId, record.correlationId)} ${JSON.stringify(record.input)}: the client got ${describeReply(record)} but the log's application answers ${JSON.stringify(unpack(found[0]))}`,
      });
  }
  const resent = [...applied.values()].filter((list) => list.length > 1).length;
  return {
    violations,
    summary: { acknowledged, verifiedInLog: verified, replayedFrom: replay.from, resent },
  };
};

const describeReply = (record: CommandRecord): string =>
  record.reply === null ? `no reply (${record.error})` : JSON.stringify(unpack(record.reply));

/** The KV history, for the linearizability checker. */
export const kvHistory = (records: readonly CommandRecord[]): HistoryOperation[] =>
  records
    .filter((r) => r.service === 'kv')
    .map((r) => ({
      clientId: r.client * 1000 + r.correlationId,
      input: r.input as unknown as HistoryOperation['input'],
      call: r.call,
      ret: r.ret,
      output: r.reply === null ? null : (unpack(r.reply) as HistoryOperation['output']),
    }));

export const checkLinearizable = (records: readonly CommandRecord[], timeoutMs: number): Violation[] => {
  const history = kvHistory(records);
  if (history.length === 0) return [];
  const result = checkKvHistory(history, { timeoutMs });
  if (result.linearizable) return [];
  return [
    {
      check: 'linearizable',
      detail: result.timedOut
        ? `the checker ran out of its ${timeoutMs} ms budget on key ${result.failingKey} (undecided)`
        : (result.explanation ?? `key ${result.failingKey} is not linearizable`),
    },
  ];
};

/** DUPLICATE: what a service answered a resend it could not match (no longer a code once resends get their original reply). */
const isDuplicate = (code: string): boolean => code === 'DUPLICATE';

/** Service-level checks of the actor workloads (see the file comment). */
export const checkServices = (
  records: readonly CommandRecord[],
  finalCounts: ReadonlyMap<string, number>,
): Violation[] => {
  const violations: Violation[] = [];
  const counts = new Map<string, { acked: number; unknown: number; values: Map<number, string> }>();
  for (const record of records) {
    if (record.service === 'kv') continue;
    const reply = record.reply === null ? null : decodeServiceReply(record.reply);
    const id = `${record.sessionId}/${record.correlationId}`;
    if (reply && !reply.ok && isDuplicate(reply.error.code))
      violations.push({
        check: 'DUPLICATE reaches the application',
        detail: `${record.service} command ${id} ${JSON.stringify(record.input)} answered ${reply.error.code}: ${reply.error.message}`,
      });
    if (record.service === 'counters') {
      const counter = String(record.input.id);
      const entry = counts.get(counter) ?? { acked: 0, unknown: 0, values: new Map() };
      counts.set(counter, entry);
      if (reply?.ok) {
        entry.acked++;
        const value = Number(reply.value);
        const other = entry.values.get(value);
        if (other !== undefined)
          violations.push({
            check: 'exactly once',
            detail: `counter ${counter}: increments ${other} and ${id} both answered ${value}`,
          });
        entry.values.set(value, id);
      } else entry.unknown++;
    }
    if (record.service === 'orders' && reply?.ok) {
      const reports = (Array.isArray(reply.value) ? reply.value : []) as Record<string, unknown>[];
      const own = reports.filter(
        (r) => r.type === 'EXECUTION_REPORT' && r.requestId === record.input.clientOrderId,
      );
      const bad = own.find((r) => r.duplicate === true || r.reason === 'DUPLICATE_CLIENT_ORDER_ID');
      if (bad)
        violations.push({
          check: 'exactly once',
          detail: `order request ${id} ${JSON.stringify(record.input)} reached the book twice: answered ${bad.duplicate ? 'as a resend (duplicate)' : 'DUPLICATE_CLIENT_ORDER_ID'}`,
        });
    }
  }
  for (const [counter, { acked, unknown }] of counts) {
    const final = finalCounts.get(counter);
    if (final === undefined) continue;
    if (final < acked || final > acked + unknown)
      violations.push({
        check: 'exactly once',
        detail: `counter ${counter}: final count ${final}, but ${acked} increments were acknowledged and ${unknown} have an unknown outcome (expected ${acked}..${acked + unknown})`,
      });
  }
  return violations;
};

/** No two members led in one term. */
export const checkLeaders = (leadersByTerm: ReadonlyMap<number, ReadonlySet<number>>): Violation[] =>
  [...leadersByTerm]
    .filter(([, members]) => members.size > 1)
    .map(([term, members]) => ({
      check: 'one leader per term',
      detail: `term ${term} had leaders ${[...members].join(', ')}`,
    }));
