// One nemesis run: build the namespaces, start the members, run the workload while the seeded schedule
// injects its faults, heal, let the members settle, stop them, read every store, check, report. The
// namespaces, the bridge and every process are removed at the end whatever happened (and a crashed
// run's leftovers at the start: see network.ts).

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unpack } from 'msgpackr';
import { encodeKvCommand } from '../../actors/services/kv.ts';
import { decodeServiceReply } from '../actor-runtime/service-client.ts';
import { moduleUrl } from '../build-kind.ts';
import { ChorusClient } from '../client/client.ts';
import { clusterConfigSchema } from '../config.ts';
import {
  checkExactlyOnce,
  checkLeaders,
  checkLinearizable,
  checkLogs,
  checkReplays,
  checkServices,
  type MemberLog,
  type Replay,
  readMemberLog,
  replayMember,
  type Violation,
} from './checks.ts';
import { NemesisCluster } from './cluster.ts';
import {
  type FaultKind,
  type FaultRecord,
  formatStep,
  makeSchedule,
  resumeSuspended,
  runStep,
} from './faults.ts';
import { acquireLock, createNetwork, removeNetwork, unavailableReason } from './network.ts';
import { availability, type NemesisReport } from './report.ts';
import { COUNTERS, KV_KEYS, Workload, type WorkloadName } from './workloads.ts';

export interface NemesisOptions {
  readonly seed: number;
  readonly members: 3 | 5;
  /** How long faults are injected, ms (the workload runs a little longer: before, and after healing). */
  readonly durationMs: number;
  readonly faults: readonly FaultKind[];
  readonly workload: WorkloadName;
  /** snapshot.everyEntries for the members; null: snapshots only when the schedule asks for one. */
  readonly snapshotEveryEntries: number | null;
  readonly sessions: number;
  /** Commands in flight per session. */
  readonly inFlight: number;
  /** If set, a single-member fault followed by a longer client-observed gap is a violation. */
  readonly maxGapMs?: number;
  /** Keep the members' directories even when the run passed. */
  readonly keepDir?: boolean;
  /** Progress lines (the schedule, each fault as it runs). */
  readonly log?: (line: string) => void;
}

/** The nemesis cannot run on this machine (not root, no `ip`/`nft`): the reason says which. */
export class NemesisUnavailableError extends Error {
  override readonly name = 'NemesisUnavailableError';
}

const SERVICES_MODULE = resolve(fileURLToPath(moduleUrl('./services', import.meta.url)));
const DEFAULTS = clusterConfigSchema.parse({
  members: [{ id: 0, host: '127.0.0.1', clientPort: 1, peerPort: 2 }],
});
/** Time for the cluster to come back whole after the faults: a few failovers' worth, with margin. */
const RECOVERY_MS = 20 * (DEFAULTS.leaderHeartbeatTimeoutMs + DEFAULTS.electionTimeoutMs) + 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export const runNemesis = async (options: NemesisOptions): Promise<NemesisReport> => {
  const reason = unavailableReason();
  if (reason) throw new NemesisUnavailableError(reason);
  const log = options.log ?? (() => {});
  const schedule = makeSchedule(options.seed, options.faults, options.durationMs, options.members);
  log(
    `nemesis seed ${options.seed}: ${options.members} members, ${options.workload} workload, ${schedule.length} faults`,
  );
  log('  (times from the start of the fault phase)');
  for (const step of schedule) log(`  ${formatStep(step)}`);
  const release = await acquireLock();
  const dir = mkdtempSync(join(tmpdir(), 'chorus-nemesis-'));
  const violations: Violation[] = [];
  const fail = (check: string) => (error: Error) => void violations.push({ check, detail: error.message });
  const faults: FaultRecord[] = [];
  const origin = performance.now();
  const now = () => performance.now() - origin;
  let cluster: NemesisCluster | null = null;
  let workload: Workload | null = null;
  let phase = { start: 0, end: 0 };
  const finalReads = new Map<string, unknown>();
  const finalCounts = new Map<string, number>();
  const logs: MemberLog[] = [];
  const replays: Replay[] = [];
  let exactlyOnce: ReturnType<typeof checkExactlyOnce>['summary'] | null = null;
  try {
    createNetwork(options.members);
    const services = options.workload === 'actors' ? SERVICES_MODULE : undefined;
    const started = await NemesisCluster.start({
      members: options.members,
      dir,
      snapshotEveryEntries: options.snapshotEveryEntries,
      services,
      startedAt: origin,
    });
    cluster = started;
    await started.whole(RECOVERY_MS);
    workload = new Workload(options.workload, {
      endpoints: started.endpoints(),
      sessions: options.sessions,
      inFlight: options.inFlight,
      seed: options.seed,
      origin,
      commandTimeoutMs: RECOVERY_MS,
    });
    await workload.start();
    phase.start = now();
    log(`  ${(phase.start / 1000).toFixed(1)} s: members up, workload running; faults begin`);
    for (const step of schedule) {
      // Each fault hits a whole cluster (every member running, caught up, a leader), so what the clients
      // see after it is its own doing; a cluster that does not get there is a violation.
      const whole = await started.untilWhole(RECOVERY_MS).then(
        () => true,
        (error: Error) => {
          fail(`recovers after ${faults.at(-1)?.kind ?? 'start-up'}`)(error);
          return false;
        },
      );
      if (!whole) break;
      // ...and the clients served by it again: a fault's gap is measured from its start, so a fault
      // started while the clients are still reconnecting after the last one (the members are whole a
      // few seconds before the sessions are back after kill-all) would be charged with that one's outage.
      const served = await workload.answeredAfter(now(), RECOVERY_MS).then(
        () => true,
        (error: Error) => {
          fail(`clients served again after ${faults.at(-1)?.kind ?? 'start-up'}`)(error);
          return false;
        },
      );
      if (!served) break;
      const record = await runStep(started, step, now);
      faults.push(record);
      log(
        `  ${((record.startedMs - phase.start) / 1000).toFixed(1).padStart(6)} s  ${record.kind}: ${record.note}`,
      );
      await sleep(step.gapAfterMs);
    }
    phase = { ...phase, end: now() };
    log(`  ${(phase.end / 1000).toFixed(1)} s: faults end; healing`);
    let healthy = true;
    await started
      .whole(RECOVERY_MS)
      .then(() => resumeSuspended(started))
      .catch((error: Error) => {
        healthy = false;
        fail('recovers after the faults')(error);
      });
    if (healthy) {
      await sleep(500); // commands on the healed cluster, then stop
      await workload.stop();
      await finalRead(started, options.workload, finalReads, finalCounts).catch(fail('final reads'));
      await workload.close();
      await started.quiesce(RECOVERY_MS).catch(fail('members settle on one log'));
    }
    log(`  ${(now() / 1000).toFixed(1)} s: members settled; reading their stores`);
    await started.killAll();
    for (let id = 0; id < options.members; id++) {
      logs.push(await readMemberLog(id, started.memberDir(id), started.local.config.mapSizeBytes));
    }
    violations.push(...checkLogs(logs));
    // Members that start from the same snapshot hold the same log from there (checked above), so one
    // replay per distinct starting point shows what each of them holds.
    const starts = new Map<string, MemberLog>();
    for (const memberLog of logs) {
      const from = `${memberLog.snapshotIndex}:${memberLog.snapshotData ? createHash('sha256').update(memberLog.snapshotData).digest('hex') : ''}`;
      if (!starts.has(from)) starts.set(from, memberLog);
    }
    for (const memberLog of starts.values()) {
      await replayMember(memberLog, services, started.local.config.workerShards)
        .then((replay) => void replays.push(replay))
        .catch(fail('replay'));
    }
    if (replays.length > 0) {
      violations.push(...checkReplays(replays, finalReads));
      const result = checkExactlyOnce(workload.records, replays);
      violations.push(...result.violations);
      exactlyOnce = result.summary;
    }
    log(`  ${(now() / 1000).toFixed(1)} s: stores read and replayed; checking`);
    violations.push(...checkLinearizable(workload.records, 60_000));
    violations.push(...checkServices(workload.records, finalCounts));
    violations.push(...checkLeaders(started.leadersByTerm));
    for (const exit of started.exits.filter((e) => !e.caused))
      violations.push({
        check: 'no exit the nemesis did not cause',
        detail: `member ${exit.id} exited (code ${exit.code}, signal ${exit.signal}) at ${((exit.at - phase.start) / 1000).toFixed(1)} s (from the start of the faults): ${exit.lastLines.slice(-3).join(' | ')}`,
      });
  } catch (error) {
    fail('run')(error as Error);
  } finally {
    await workload?.stop().catch(() => {});
    await workload?.close().catch(() => {});
    await cluster?.killAll().catch(() => {});
    removeNetwork();
    release();
  }
  const avail = availability(workload?.records ?? [], faults, phase);
  if (options.maxGapMs !== undefined) {
    for (const fault of avail.perFault)
      if (fault.singleMember && fault.gapMs > options.maxGapMs)
        violations.push({
          check: 'availability',
          detail: `${fault.kind} at ${((fault.startedMs - phase.start) / 1000).toFixed(1)} s: ${Math.round(fault.gapMs)} ms without a successful command (bound ${options.maxGapMs} ms)`,
        });
  }
  const keep = options.keepDir || violations.length > 0;
  if (!keep) rmSync(dir, { recursive: true, force: true });
  // Evidence: each member's last log lines (JSON records) next to its directory.
  else
    for (const view of cluster?.local.views ?? [])
      writeFileSync(join(dir, `member-${view.id}.log`), `${view.lines.join('\n')}\n`);
  const records = workload?.records ?? [];
  return {
    seed: options.seed,
    members: options.members,
    workload: options.workload,
    durationMs: Math.round(now()),
    faultPhaseStartMs: Math.round(phase.start),
    snapshotEveryEntries: options.snapshotEveryEntries,
    schedule,
    faults,
    operations: {
      sent: records.length,
      acknowledged: records.filter((r) => r.reply !== null).length,
      unknown: records.filter((r) => r.reply === null).length,
      byService: countBy(records.map((r) => r.service)),
      sessionErrors: workload?.sessionErrors ?? [],
    },
    availability: avail,
    exactlyOnce,
    logs: logs.map(({ id, firstIndex, lastIndex, snapshotIndex }) => ({
      id,
      firstIndex,
      lastIndex,
      snapshotIndex,
    })),
    terms: cluster ? cluster.leadersByTerm.size : 0,
    exits: cluster?.exits.map(({ lastLines: _, ...exit }) => exit) ?? [],
    violations,
    dir: keep ? dir : null,
  };
};

const countBy = (values: readonly string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
};

/** Read the final state through the log: every KV key, or every counter. */
const finalRead = async (
  cluster: NemesisCluster,
  workload: WorkloadName,
  reads: Map<string, unknown>,
  counts: Map<string, number>,
): Promise<void> => {
  const reader = await ChorusClient.connect({
    endpoints: cluster.endpoints(),
    commandTimeoutMs: RECOVERY_MS,
  });
  try {
    if (workload === 'kv') {
      for (let k = 0; k < KV_KEYS; k++) {
        const reply = unpack(await reader.send(encodeKvCommand({ op: 'get', key: `k${k}` }))) as {
          value: string | null;
        };
        reads.set(`k${k}`, reply.value);
      }
      return;
    }
    const { counterService } = await import('./services.ts');
    for (let n = 0; n < COUNTERS; n++) {
      const reply = decodeServiceReply(
        await reader.send(counterService.commandBody({ type: 'GET', id: `n${n}` })),
      );
      if (reply.ok) counts.set(`n${n}`, Number((reply.value as { count: number }).count));
    }
  } finally {
    await reader.close();
  }
};
