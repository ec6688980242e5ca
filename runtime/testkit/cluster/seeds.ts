// Run one scenario on many seeds: each on a fresh TestCluster, every check after it. The first seed
// that fails throws its TestClusterFailure, naming the seed; CHORUS_SEED=N runs seed N alone, so a
// failure found in a sweep replays exactly, on its own, under a debugger.

import { TestCluster, type TestClusterOptions, type TestClusterReport } from './test-cluster.ts';

export interface SeedSweepOptions extends Omit<TestClusterOptions, 'seed'> {
  /** How many seeds (default 10), from `firstSeed` (default 1). */
  seeds?: number;
  firstSeed?: number;
}

/** Run `scenario` on each seed; the reports of all seeds, or the first failure thrown. */
export const sweepSeeds = async (
  options: SeedSweepOptions,
  scenario: (cluster: TestCluster) => Promise<void>,
): Promise<TestClusterReport[]> => {
  const only = process.env.CHORUS_SEED;
  const first = options.firstSeed ?? 1;
  const seeds =
    only !== undefined && only !== ''
      ? [Number(only)]
      : Array.from({ length: options.seeds ?? 10 }, (_, i) => first + i);
  const reports: TestClusterReport[] = [];
  for (const seed of seeds) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`CHORUS_SEED must be an integer seed, got ${only}`);
    const cluster = new TestCluster({ ...options, seed });
    try {
      await scenario(cluster);
    } catch (error) {
      // The scenario's own assertion failed: say which seed replays it.
      if (error instanceof Error)
        error.message = `TestCluster seed ${seed} (CHORUS_SEED=${seed} replays it): ${error.message}`;
      throw error;
    }
    reports.push(cluster.verify());
  }
  return reports;
};
