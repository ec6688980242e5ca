// `npx chorus sim`: seeded runs of the simulator with faults chosen by the seed, invariants after
// every step, a heal phase that must bring progress back, and a linearizability check of the clients'
// history at the end. One seed reproduces a run exactly; a failing seed's report carries the command
// that replays it.

import { type ConsensusTimeouts, DEFAULT_TIMEOUTS, type FaultyRules } from '../../actors/consensus/types.ts';
import { Random } from '../../machines/random.ts';
import { ActorWorkload, COUNTERS } from './actor-clients.ts';
import { firstAnswerAfter } from './clients.ts';
import { type FaultKind, planFaults } from './faults.ts';
import { checkGatewaysSettled, GatewayWorkload } from './gateways.ts';
import type { Violation } from './invariants.ts';
import { checkKvHistory } from './kv-history.ts';
import { ActorSimServices } from './services.ts';
import { Simulation, SimulationBudgetExceeded, type SimWorkload } from './simulation.ts';

export { DEFAULT_FAULT_KINDS, FAULT_KINDS, type FaultKind } from './faults.ts';
export type { Violation } from './invariants.ts';
export { Simulation, type SimWorkload } from './simulation.ts';

export interface SeedOptions {
  members?: 3 | 5;
  /**
   * What the members host and the clients run: the KV service with a linearizability check of the
   * history, or the actor services (counters, order book) with exactly-once checks. Default: by seed,
   * KV on odd seeds and actors on even ones.
   */
  workload?: SimWorkload;
  /** Virtual ms of the faulty phase (default 5000). */
  faultMs?: number;
  /** Virtual ms after healing during which clients keep working (default 3000). */
  healMs?: number;
  /** Fault intensity in [0, 1]; default: chosen by the seed. */
  intensity?: number;
  faultyRules?: FaultyRules;
  /** Budget for the linearizability check, per seed (ms of real time). */
  linearizabilityTimeoutMs?: number;
  /** Draw only these fault kinds (default: DEFAULT_FAULT_KINDS, every kind but a lost directory). */
  faultKinds?: readonly FaultKind[];
  /** Budget per seed: events (default 2,000,000; a run takes about 100,000). */
  maxSteps?: number;
  /**
   * Budget per seed: real time in ms (default: none). The step budget is the one that decides a run: a
   * real-time budget fails seeds on a busy machine that pass on a quiet one.
   */
  maxRealMs?: number;
}

/**
 * Liveness: once the faults heal, a ready leader within this bound and a client operation completed
 * within LIVENESS_BOUND + a client's retry period. The bound covers a restarted member's start-up
 * canvass, a follower's wait for its old leader, and a few split ballots:
 * heartbeat timeout + start-up canvass + 3 × (canvass + nomination + ballot).
 */
export const livenessBoundMs = (t: ConsensusTimeouts = DEFAULT_TIMEOUTS): number =>
  t.heartbeatTimeoutMs + t.startupCanvassTimeoutMs + 3 * (2 * t.electionTimeoutMs);

export interface SeedReport {
  seed: number;
  members: number;
  workload: SimWorkload;
  steps: number;
  faultsInjected: number;
  /** How many faults of each kind the plan drew. */
  faultKinds: Partial<Record<FaultKind, number>>;
  elections: number;
  operations: number;
  completedOperations: number;
  violations: Violation[];
  /** Virtual ms from the heal to a ready leader, and to the first client operation completed (null: none). */
  leaderAfterHealMs: number | null;
  progressAfterHealMs: number | null;
  linearizable: boolean;
  linearizabilityTimedOut: boolean;
  explanation?: string;
  /** The command that replays this seed. */
  replay: string;
}

export interface SweepOptions extends SeedOptions {
  seeds: number;
  startSeed?: number;
  json?: boolean;
  /** Progress and failures on stderr. */
  verbose?: boolean;
}

export interface SweepReport {
  seeds: number;
  startSeed: number;
  members: number;
  steps: number;
  faultsInjected: number;
  /** Faults the plans drew, by kind, over all seeds. */
  faultKinds: Partial<Record<FaultKind, number>>;
  /** The slowest recovery after the heal over all seeds (virtual ms to a ready leader; null: some seed had none). */
  slowestRecoveryMs: number | null;
  elections: number;
  /** Invariant violations over all seeds (0 when every invariant held). */
  violations: number;
  /** True when every seed's history was linearizable. */
  linearizable: boolean;
  operations: number;
  firstFailingSeed: number | null;
  /** The replay command of the first failing seed. */
  replay: string | null;
  /** Up to 10 failing seeds with their first violations. */
  failures: { seed: number; violations: Violation[]; linearizable: boolean; replay: string }[];
  elapsedMs: number;
}

export const replayCommand = (seed: number, options: SeedOptions = {}): string => {
  const parts = ['npx chorus sim', `--seed ${seed}`];
  if ((options.members ?? 3) !== 3) parts.push(`--members ${options.members}`);
  if (options.intensity !== undefined) parts.push(`--intensity ${options.intensity}`);
  if (options.workload !== undefined) parts.push(`--workload ${options.workload}`);
  if (options.faultKinds !== undefined && options.faultKinds.length > 0)
    parts.push(`--faults ${options.faultKinds.join(',')}`);
  return parts.join(' ');
};

/** Run one seed: faults, heal, quiet, then the end-of-run checks. An exception is a violation. */
export const runSeed = (seed: number, options: SeedOptions = {}): SeedReport => {
  const planner = new Random(seed ^ 0x5eed);
  const intensity = options.intensity ?? planner.float();
  const highLatency = planner.chance(0.2);
  const sim = new Simulation({
    seed,
    members: options.members ?? 3,
    workload: workloadOf(seed, options),
    faultyRules: options.faultyRules,
    clockRateSkew: 0.05,
    network: {
      dropRate: intensity * 0.05,
      dupRate: intensity * 0.03,
      minDelayMs: 0.5,
      maxDelayMs: highLatency ? planner.int(40, 120) : planner.int(2, 12),
    },
    maxSteps: options.maxSteps ?? 2_000_000,
    maxRealMs: options.maxRealMs,
  });
  const faultMs = options.faultMs ?? 5000;
  const healMs = options.healMs ?? 3000;
  let healAt: number | null = null;
  let planned: Partial<Record<FaultKind, number>> = {};
  try {
    sim.startClients();
    planned = planFaults(sim, planner, { intensity, start: 600, end: faultMs, kinds: options.faultKinds });
    sim.runUntil(faultMs);
    sim.healAll();
    healAt = sim.now;
    sim.runUntil(healAt + healMs);
    sim.setClientsActive(false);
    sim.runFor(1000);
    finalChecks(sim, healAt);
  } catch (error) {
    const budget = error instanceof SimulationBudgetExceeded;
    const what =
      error instanceof Error ? (budget ? error.message : (error.stack ?? error.message)) : String(error);
    sim.checker.fail(budget ? 'BUDGET_EXCEEDED' : 'EXCEPTION', -1, what.split('\n').slice(0, 4).join(' | '));
  }
  return { ...finishReport(sim, seed, options, healAt), faultKinds: planned };
};

/** The workload a seed runs: the one asked for, or by seed (KV on odd seeds, actors on even ones). */
export const workloadOf = (seed: number, options: SeedOptions = {}): SimWorkload =>
  options.workload ?? (seed % 2 === 0 ? 'actors' : 'kv');

/**
 * The actor workload's end-of-run check: every counter, on every member that applied everything, holds
 * at least the increments acknowledged and at most those plus the ones of unknown outcome.
 */
const checkCounters = (sim: Simulation, appliedIndex: number): void => {
  const workload = sim.workload;
  if (!(workload instanceof ActorWorkload)) return;
  for (const id of sim.memberIds) {
    const member = sim.member(id);
    if (!(member.services instanceof ActorSimServices) || member.node?.appliedIndex !== appliedIndex)
      continue;
    for (const counter of COUNTERS) {
      const tally = workload.tallies.get(counter);
      if (!tally) continue;
      const value = member.services.counter(counter) ?? 0;
      const most = tally.acked + tally.unknown + tally.pending;
      if (value < tally.acked || value > most) {
        sim.checker.fail(
          // Above: applied twice, or applied though the client was told it was refused.
          value < tally.acked ? 'ACKNOWLEDGED_COMMAND_LOST' : 'UNACKNOWLEDGED_COMMAND_APPLIED',
          id,
          `counter ${counter} is ${value} on member ${id}: ${tally.acked} increments acknowledged, ${tally.unknown + tally.pending} of unknown outcome`,
        );
      }
    }
  }
};

/** After the heal phase: progress resumed in time, and every member converged on the same applied log. */
export const finalChecks = (sim: Simulation, healAt: number): void => {
  if (sim.workload instanceof GatewayWorkload) checkGatewaysSettled(sim, sim.workload);
  const leader = sim.leader();
  if (leader === null) sim.checker.fail('NO_PROGRESS_AFTER_HEAL', -1, 'no leader after the heal phase');
  const progressed = sim.workload.answered.some((op) => op.call >= healAt);
  if (!progressed)
    sim.checker.fail('NO_PROGRESS_AFTER_HEAL', -1, 'no client operation completed after the heal');
  const bound = livenessBoundMs(sim.timeouts);
  const { leaderMs, progressMs } = recovery(sim, healAt);
  if (leaderMs === null || leaderMs > bound) {
    sim.checker.fail(
      'SLOW_RECOVERY',
      -1,
      `no ready leader within ${bound} ms of the heal (${leaderMs ?? 'never'})`,
    );
  } else if (progressMs === null || progressMs > bound + 1500) {
    sim.checker.fail(
      'SLOW_RECOVERY',
      -1,
      `no client operation completed within ${bound + 1500} ms of the heal (${progressMs ?? 'never'})`,
    );
  }
  // The cluster's own work goes on in the quiet (a session that times out is closed through the log):
  // an entry committed in the last moments reaches the followers with the next heartbeat, so members
  // have two heartbeat intervals (and the network's delay) to converge.
  const maxCommit = (): number => Math.max(0, ...sim.memberIds.map((id) => sim.node(id)?.commitIndex ?? 0));
  const converged = (): boolean =>
    sim.memberIds.every((id) => (sim.node(id)?.appliedIndex ?? maxCommit()) === maxCommit());
  const settleBy = sim.now + 2 * sim.timeouts.heartbeatIntervalMs + 20;
  while (!converged() && sim.now < settleBy) sim.runFor(5);
  const commit = maxCommit();
  for (const id of sim.memberIds) {
    const node = sim.node(id);
    if (node && node.appliedIndex !== commit) {
      sim.checker.fail(
        'MEMBERS_DIVERGED',
        id,
        `member ${id} applied ${node.appliedIndex} of ${commit} after the quiet period`,
      );
    }
  }
  checkCounters(sim, commit);
  sim.checker.checkDurability();
};

/** Virtual ms from `healAt` to the first ready leader and to the first operation completed after it. */
const recovery = (
  sim: Simulation,
  healAt: number,
): { leaderMs: number | null; progressMs: number | null } => {
  const first = firstAnswerAfter(sim.workload.answered, healAt);
  const ready = sim.readyLeaderAfterHeal;
  return {
    leaderMs: ready === null ? null : ready - healAt,
    progressMs: first === null ? null : first - healAt,
  };
};

export const finishReport = (
  sim: Simulation,
  seed: number,
  options: SeedOptions = {},
  healAt: number | null = null,
): SeedReport => {
  sim.closeHistory();
  const { leaderMs, progressMs } =
    healAt === null ? { leaderMs: null, progressMs: null } : recovery(sim, healAt);
  const lin = checkKvHistory(sim.history, { timeoutMs: options.linearizabilityTimeoutMs ?? 10_000 });
  return {
    seed,
    members: sim.memberIds.length,
    workload: sim.workloadKind,
    steps: sim.steps,
    faultsInjected: sim.faultsInjected,
    faultKinds: {},
    elections: sim.elections,
    operations: sim.workload.issued,
    completedOperations: sim.completedOps,
    violations: [...sim.checker.violations],
    leaderAfterHealMs: leaderMs,
    progressAfterHealMs: progressMs,
    linearizable: lin.linearizable,
    linearizabilityTimedOut: lin.timedOut === true,
    ...(lin.explanation && !lin.linearizable ? { explanation: lin.explanation } : {}),
    replay: replayCommand(seed, options),
  };
};

/** Run seeds startSeed .. startSeed + seeds - 1 and sum up. */
export async function runSweep(options: SweepOptions): Promise<SweepReport> {
  if (!Number.isInteger(options.seeds) || options.seeds < 1) {
    throw new RangeError(`seeds must be a whole number of at least 1, got ${options.seeds}`);
  }
  const members = options.members ?? 3;
  if (members !== 3 && members !== 5) throw new RangeError(`members must be 3 or 5, got ${members}`);
  const startSeed = options.startSeed ?? 1;
  const started = performance.now();
  const report: SweepReport = {
    seeds: options.seeds,
    startSeed,
    members,
    steps: 0,
    faultsInjected: 0,
    faultKinds: {},
    slowestRecoveryMs: 0,
    elections: 0,
    violations: 0,
    linearizable: true,
    operations: 0,
    firstFailingSeed: null,
    replay: null,
    failures: [],
    elapsedMs: 0,
  };
  for (let seed = startSeed; seed < startSeed + options.seeds; seed++) {
    const result = runSeed(seed, options);
    report.steps += result.steps;
    report.faultsInjected += result.faultsInjected;
    for (const [kind, n] of Object.entries(result.faultKinds) as [FaultKind, number][]) {
      report.faultKinds[kind] = (report.faultKinds[kind] ?? 0) + n;
    }
    if (result.leaderAfterHealMs === null || report.slowestRecoveryMs === null)
      report.slowestRecoveryMs = null;
    else report.slowestRecoveryMs = Math.max(report.slowestRecoveryMs, Math.round(result.leaderAfterHealMs));
    report.elections += result.elections;
    report.violations += result.violations.length;
    report.operations += result.operations;
    if (!result.linearizable) report.linearizable = false;
    const failed = result.violations.length > 0 || !result.linearizable;
    if (failed) {
      if (report.firstFailingSeed === null) {
        report.firstFailingSeed = seed;
        report.replay = result.replay;
      }
      if (report.failures.length < 10) {
        report.failures.push({
          seed,
          violations: result.violations.slice(0, 3),
          linearizable: result.linearizable,
          replay: result.replay,
        });
      }
      if (options.verbose) {
        process.stderr.write(
          `seed ${seed} FAILED: ${result.violations.map((v) => `${v.invariant} (${v.detail})`).join('; ') || result.explanation || 'not linearizable'}\n  replay: ${result.replay}\n`,
        );
      }
    }
    if (options.verbose && (seed - startSeed + 1) % 100 === 0) {
      process.stderr.write(`${seed - startSeed + 1}/${options.seeds} seeds\n`);
    }
    // Let the event loop breathe between seeds (signals, other work in the process).
    if ((seed - startSeed) % 50 === 49) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  report.elapsedMs = Math.round(performance.now() - started);
  return report;
}

/** A few human-readable lines for a sweep (the CLI prints the JSON object instead with --json). */
export const formatSweepReport = (report: SweepReport): string => {
  const lines = [
    `${report.seeds} seed(s) from ${report.startSeed}, ${report.members} members: ${report.steps} steps, ` +
      `${report.faultsInjected} faults, ${report.elections} elections, ${report.operations} client operations, ` +
      `${(report.elapsedMs / 1000).toFixed(1)} s`,
    `invariant violations: ${report.violations}; history linearizable: ${report.linearizable ? 'yes' : 'NO'}; ` +
      `slowest recovery after the heal: ${report.slowestRecoveryMs ?? 'none'} ms (bound ${livenessBoundMs()} ms)`,
  ];
  for (const failure of report.failures) {
    const what = failure.violations.map((v) => `${v.invariant} at ${Math.round(v.time)} ms: ${v.detail}`);
    if (!failure.linearizable) what.push('client history is not linearizable');
    lines.push(`seed ${failure.seed} FAILED: ${what.join('; ')}`, `  replay: ${failure.replay}`);
  }
  return `${lines.join('\n')}\n`;
};
