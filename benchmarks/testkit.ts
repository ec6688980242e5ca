// The testkit's TestCluster: how fast a user's services run through a simulated 3-member cluster with
// faults on, so a CI can afford hundreds of seeds. Each run is a fresh TestCluster on the example counter
// service: `clients` real ChorusClients (default 4), 2 commands in flight each with 20-60 ms of think
// time between commands (about 200 commands a second of virtual time, so 1,000 span ~5 virtual seconds,
// as long as a `chorus sim` seed's faulty phase), send INCREMENTs until `commands` (default 1,000) have
// settled — answered, or given up on with an unknown outcome — then the cluster heals, runs until idle
// and every check runs (invariants, replay equals live, acknowledged commands applied once). With faults,
// the seed's random fault plan (crashes, partitions, pauses, lossy and slow links, disk stalls, ...)
// strikes over those 5 s. The baseline is the same run without faults.
// Wall time covers everything from `new TestCluster` to the checks' verdict; the goal is 1,000 commands
// with faults in under one second. The machine is shared, so the run also reports its CPU time (what the
// run costs, whatever else runs) and the load average it ran under.
//
//   npx chorus bench testkit --json

import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { counterService, services } from '../examples/counter-service.ts';
import { TestCluster, type TestClusterReport } from '../runtime/testkit/cluster/index.ts';
import { type BenchOptions, type BenchResult, round } from './harness.ts';

export const describe =
  'TestCluster: commands per second of wall time through a simulated 3-member cluster running the counter service, with the seed’s random faults on and without (the baseline), checks included.';

const IN_FLIGHT = 2;
const COUNTERS = ['a', 'b', 'c', 'd'];

interface Run {
  readonly wallMs: number;
  /** CPU time of this process over the run (user + system), ms: what the run costs on a loaded machine. */
  readonly cpuMs: number;
  readonly report: TestClusterReport;
  readonly answered: number;
}

/** One seed: `commands` increments through `clients` clients, faults on or off, then every check. */
export const runOnce = async (
  seed: number,
  commands: number,
  clients: number,
  faults: boolean,
): Promise<Run> => {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const cluster = new TestCluster({ services, seed });
  const counters = Array.from({ length: clients }, () =>
    cluster.serviceClient(counterService, { commandTimeoutMs: 5_000, maxInFlight: IN_FLIGHT }),
  );
  // The seed's random faults over the first 5 s, one every 0.45-0.9 s of virtual time (intensity 0.5).
  if (faults) cluster.faults({ forMs: 5000, intensity: 0.5 });
  let issued = 0;
  let answered = 0;
  const worker = async (client: (typeof counters)[number]): Promise<void> => {
    while (issued < commands) {
      issued++;
      const id = COUNTERS[issued % COUNTERS.length];
      try {
        await client.command({ type: 'INCREMENT', id, by: 1 });
        answered++;
      } catch {
        // An unknown outcome under faults: the checks decide whether anything was lost or applied twice.
      }
      await cluster.advance(cluster.random.int(20, 60));
    }
  };
  const workers = counters.flatMap((client) => Array.from({ length: IN_FLIGHT }, () => worker(client)));
  await cluster.run(Promise.all(workers), { withinMs: 600_000 });
  cluster.heal();
  await cluster.runUntilIdle();
  const report = cluster.check();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000, report, answered };
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const commands = Number(options.commands ?? 1000);
  const clients = Number(options.clients ?? 4);
  const seeds = Number(options.seeds ?? 3);
  await runOnce(0, 100, clients, true); // warm-up: modules compiled, JIT warm
  const faulty: Run[] = [];
  const calm: Run[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    faulty.push(await runOnce(seed, commands, clients, true));
    calm.push(await runOnce(seed, commands, clients, false));
  }
  const median = (runs: readonly Run[], pick: (r: Run) => number): number => {
    const sorted = runs.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  };
  const faultyMs = median(faulty, (r) => r.wallMs);
  const calmMs = median(calm, (r) => r.wallMs);
  return {
    benchmark: 'testkit',
    measured: `median over ${seeds} seeds of the wall time of one TestCluster run: ${commands} INCREMENT commands through ${clients} clients (${IN_FLIGHT} in flight each) on 3 members, until idle, every check included; with the seed's random faults, and the same without (baseline)`,
    commands,
    seeds,
    wallMsWithFaults: Math.round(faultyMs),
    wallMsWithoutFaults: Math.round(calmMs),
    cpuMsWithFaults: Math.round(median(faulty, (r) => r.cpuMs)),
    cpuMsWithoutFaults: Math.round(median(calm, (r) => r.cpuMs)),
    commandsPerSecondWithFaults: Math.round((commands * 1000) / faultyMs),
    commandsPerSecondWithoutFaults: Math.round((commands * 1000) / calmMs),
    faultsOverBaseline: round(faultyMs / calmMs, 2),
    underOneSecondWall: faultyMs < 1000,
    underOneSecondCpu: median(faulty, (r) => r.cpuMs) < 1000,
    loadAverage: round(loadavg()[0], 2),
    faultsInjected: faulty.reduce((n, r) => n + r.report.faultsInjected, 0),
    elections: faulty.reduce((n, r) => n + r.report.elections, 0),
    virtualMsWithFaults: median(faulty, (r) => r.report.virtualMs),
    answeredWithFaults: faulty.reduce((n, r) => n + r.answered, 0),
    violations: [...faulty, ...calm].reduce((n, r) => n + r.report.violations.length, 0),
    allChecksPassed: [...faulty, ...calm].every((r) => r.report.ok),
  };
};
