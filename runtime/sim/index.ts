// `npx chorus sim`: seeded runs of the simulator with faults chosen by the seed, invariants after
// every step, a heal phase that must bring progress back, and a linearizability check of the clients'
// history at the end. One seed reproduces a run exactly; a failing seed's report carries the command
// that replays it.

import type { FaultyRules } from '../../actors/consensus/types.ts';
import { Random } from '../../machines/random.ts';
import type { Violation } from './invariants.ts';
import { checkKvHistory } from './linearizability.ts';
import { Simulation } from './simulation.ts';

export type { Violation } from './invariants.ts';
export { Simulation } from './simulation.ts';

export interface SeedOptions {
  members?: 3 | 5;
  /** Virtual ms of the faulty phase (default 5000). */
  faultMs?: number;
  /** Virtual ms after healing during which clients keep working (default 3000). */
  healMs?: number;
  /** Fault intensity in [0, 1]; default: chosen by the seed. */
  intensity?: number;
  faultyRules?: FaultyRules;
  /** Budget for the linearizability check, per seed (ms of real time). */
  linearizabilityTimeoutMs?: number;
}

export interface SeedReport {
  seed: number;
  members: number;
  steps: number;
  faultsInjected: number;
  elections: number;
  operations: number;
  completedOperations: number;
  violations: Violation[];
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
  return parts.join(' ');
};

/** Schedule the seed's random faults over [start, end) of virtual time. */
const planFaults = (sim: Simulation, rng: Random, intensity: number, start: number, end: number): void => {
  const ids = sim.memberIds;
  const others = (id: number) => ids.filter((m) => m !== id);
  const pickTarget = (): number => (rng.chance(0.5) ? (sim.leader() ?? rng.pick(ids)) : rng.pick(ids));
  const gap = Math.round(1400 - 1000 * intensity);
  let t = start;
  while (true) {
    t += rng.int(Math.round(gap / 2), gap);
    if (t >= end) break;
    const duration = rng.int(150, 1800);
    const kind = rng.int(0, 8);
    sim.at(t, () => {
      if (sim.healed) return;
      switch (kind) {
        case 0: {
          const id = pickTarget();
          sim.crash(id);
          sim.at(sim.now + duration, () => sim.restart(id));
          return;
        }
        case 1: {
          const id = pickTarget();
          sim.isolate(id);
          sim.at(sim.now + duration, () => sim.healNetwork());
          return;
        }
        case 2: {
          const shuffled = ids.map((id) => ({ id, k: rng.uint32() }));
          shuffled.sort((a, b) => a.k - b.k);
          const cut = rng.int(1, ids.length - 1);
          sim.partition([shuffled.slice(0, cut).map((s) => s.id), shuffled.slice(cut).map((s) => s.id)]);
          sim.at(sim.now + duration, () => sim.healNetwork());
          return;
        }
        case 3: {
          // Asymmetric: a member can send but not receive (or the reverse).
          const id = pickTarget();
          for (const other of others(id)) {
            if (rng.chance(0.5)) sim.block(id, other);
            else sim.block(other, id);
          }
          sim.at(sim.now + duration, () => sim.healNetwork());
          return;
        }
        case 4: {
          // Flapping links of one member.
          const id = rng.pick(ids);
          const flips = rng.int(4, 14);
          let at = sim.now;
          for (let i = 0; i < flips; i++) {
            at += rng.int(30, 160);
            const cut = i % 2 === 0;
            sim.at(at, () => {
              if (sim.healed) return;
              if (cut) sim.isolate(id);
              else sim.healNetwork();
            });
          }
          sim.at(at + 50, () => sim.healNetwork());
          return;
        }
        case 5: {
          // A long pause of one member (GC, SIGSTOP): R3.
          const id = pickTarget();
          sim.pause(id);
          sim.at(sim.now + duration, () => sim.resume(id));
          return;
        }
        case 6: {
          // A burst of loss, duplication and delay: P6, P5.
          const before = { ...sim.network };
          sim.network = {
            dropRate: Math.min(0.5, before.dropRate + 0.1 + 0.3 * intensity),
            dupRate: Math.min(0.3, before.dupRate + 0.1),
            minDelayMs: before.minDelayMs,
            maxDelayMs: before.maxDelayMs + rng.int(5, 120),
          };
          sim.faultsInjected++;
          sim.at(sim.now + duration, () => {
            if (!sim.healed) sim.network = before;
          });
          return;
        }
        case 7: {
          // Crash a majority at once, then bring them back (N4, N5).
          const victims = [...ids].slice(0, Math.floor(ids.length / 2) + (rng.chance(0.5) ? 1 : 0));
          for (const id of victims) sim.crash(id);
          sim.at(sim.now + duration, () => {
            for (const id of victims) sim.restart(id);
          });
          return;
        }
        default: {
          const id = pickTarget();
          sim.crash(id);
          sim.at(sim.now + rng.int(20, 200), () => sim.restart(id));
        }
      }
    });
  }
};

/** Run one seed: faults, heal, quiet, then the end-of-run checks. */
export const runSeed = (seed: number, options: SeedOptions = {}): SeedReport => {
  const planner = new Random(seed ^ 0x5eed);
  const intensity = options.intensity ?? planner.float();
  const highLatency = planner.chance(0.2);
  const sim = new Simulation({
    seed,
    members: options.members ?? 3,
    faultyRules: options.faultyRules,
    clockRateSkew: 0.05,
    network: {
      dropRate: intensity * 0.05,
      dupRate: intensity * 0.03,
      minDelayMs: 0.5,
      maxDelayMs: highLatency ? planner.int(40, 120) : planner.int(2, 12),
    },
  });
  const faultMs = options.faultMs ?? 5000;
  const healMs = options.healMs ?? 3000;
  sim.startClients();
  planFaults(sim, planner, intensity, 600, faultMs);
  sim.runUntil(faultMs);
  sim.healAll();
  const healAt = sim.now;
  sim.runUntil(healAt + healMs);
  sim.setClientsActive(false);
  sim.runFor(1000);
  finalChecks(sim, healAt);
  return finishReport(sim, seed, options);
};

/** After the heal phase: progress resumed, and every member converged on the same applied log. */
export const finalChecks = (sim: Simulation, healAt: number): void => {
  const leader = sim.leader();
  if (leader === null) sim.checker.fail('NO_PROGRESS_AFTER_HEAL', -1, 'no leader after the heal phase');
  const progressed = sim.history.some((op) => op.call >= healAt && op.ret !== null);
  if (!progressed)
    sim.checker.fail('NO_PROGRESS_AFTER_HEAL', -1, 'no client operation completed after the heal');
  let maxCommit = 0;
  for (const id of sim.memberIds) maxCommit = Math.max(maxCommit, sim.node(id)?.commitIndex ?? 0);
  for (const id of sim.memberIds) {
    const node = sim.node(id);
    if (node && node.appliedIndex !== maxCommit) {
      sim.checker.fail(
        'MEMBERS_DIVERGED',
        id,
        `member ${id} applied ${node.appliedIndex} of ${maxCommit} after the quiet period`,
      );
    }
  }
  sim.checker.checkDurability();
};

export const finishReport = (sim: Simulation, seed: number, options: SeedOptions = {}): SeedReport => {
  sim.closeHistory();
  const lin = checkKvHistory(sim.history, { timeoutMs: options.linearizabilityTimeoutMs ?? 10_000 });
  return {
    seed,
    members: sim.memberIds.length,
    steps: sim.steps,
    faultsInjected: sim.faultsInjected,
    elections: sim.elections,
    operations: sim.history.length,
    completedOperations: sim.completedOps,
    violations: [...sim.checker.violations],
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
    `invariant violations: ${report.violations}; history linearizable: ${report.linearizable ? 'yes' : 'NO'}`,
  ];
  for (const failure of report.failures) {
    const what = failure.violations.map((v) => `${v.invariant} at ${Math.round(v.time)} ms: ${v.detail}`);
    if (!failure.linearizable) what.push('client history is not linearizable');
    lines.push(`seed ${failure.seed} FAILED: ${what.join('; ')}`, `  replay: ${failure.replay}`);
  }
  return `${lines.join('\n')}\n`;
};
