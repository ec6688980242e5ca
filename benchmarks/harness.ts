// Shared plumbing for benchmarks: every benchmark is `benchmarks/NAME.ts`, exports `describe` (what it
// measures, one sentence) and `run(options)`, and returns one flat JSON object. `npx chorus bench NAME`
// prints it. Figures are ratios against a baseline measured in the same run: these machines are shared
// and noisy, so absolute numbers vary from run to run.

import { performance } from 'node:perf_hooks';

export type BenchOptions = Record<string, string | number | boolean | undefined>;
export type BenchResult = { benchmark: string; measured: string } & Record<string, unknown>;

export interface Benchmark {
  readonly describe: string;
  run(options: BenchOptions): Promise<BenchResult>;
}

/** Run `op` repeatedly until at least `minMs` has passed; ops per second over the whole run. */
export const opsPerSecond = async (
  op: () => unknown | Promise<unknown>,
  { minMs = 1000, opsPerCall = 1 }: { minMs?: number; opsPerCall?: number } = {},
): Promise<number> => {
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    const result = op();
    if (result instanceof Promise) await result;
    calls++;
    elapsed = performance.now() - start;
  }
  return (calls * opsPerCall * 1000) / elapsed;
};

/** Time one call, in milliseconds. */
export const timeMs = async (op: () => unknown | Promise<unknown>): Promise<number> => {
  const start = performance.now();
  const result = op();
  if (result instanceof Promise) await result;
  return performance.now() - start;
};

/** The p-th percentile (0..100) of a list of samples, by nearest rank. */
export const percentile = (samples: readonly number[], p: number): number => {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
};

/** Round to a few significant digits for printing. */
export const round = (value: number, digits = 3): number =>
  Number.isFinite(value) ? Number(value.toPrecision(digits)) : value;
