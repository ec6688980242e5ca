// Shared scenario plumbing for the simulator specs: start a seeded cluster with clients, wait for
// conditions in virtual time, and read what happened.

import { finalChecks, finishReport, type SeedReport } from '../../runtime/sim/index.ts';
import type { SimulationOptions } from '../../runtime/sim/simulation.ts';
import { Simulation } from '../../runtime/sim/simulation.ts';

/** A cluster with clients running and a leader elected (throws if none within 3 s). */
export const startCluster = (options: SimulationOptions): { sim: Simulation; leader: number } => {
  const sim = new Simulation({ snapshotEvery: 50, ...options });
  sim.startClients();
  const leader = runUntilLeader(sim, 3000);
  if (leader === null) throw new Error(`seed ${options.seed}: no leader within 3 s`);
  sim.runFor(300);
  return { sim, leader: sim.leader() as number };
};

/** Run until some member leads (optionally: a member other than `not`); returns it or null. */
export const runUntilLeader = (sim: Simulation, withinMs: number, not?: number): number | null => {
  const end = sim.now + withinMs;
  while (sim.now < end) {
    sim.runFor(5);
    const leader = sim.leader();
    if (leader !== null && leader !== not && sim.node(leader)?.isReadyLeader) return leader;
  }
  return null;
};

/** The highest commit position any running member knows. */
export const maxCommit = (sim: Simulation): number =>
  Math.max(0, ...sim.memberIds.map((id) => sim.node(id)?.commitIndex ?? 0));

/** Times at which any member became leader after `since`. */
export const leaderElectionsSince = (sim: Simulation, since: number) =>
  sim.roleEvents.filter((e) => e.to === 'LEADER' && e.time > since);

/** Heal everything, let clients work, go quiet, then run the end-of-run checks and report. */
export const healAndFinish = (sim: Simulation, healMs = 2500): SeedReport => {
  sim.healAll();
  const healAt = sim.now;
  sim.runFor(healMs);
  sim.setClientsActive(false);
  sim.runFor(1000);
  finalChecks(sim, healAt);
  return finishReport(sim, sim.seed, {}, healAt);
};

/** Operations that completed with a reply in [from, to). */
export const completedBetween = (sim: Simulation, from: number, to: number) =>
  sim.history.filter((op) => op.ret !== null && op.ret >= from && op.ret < to);
