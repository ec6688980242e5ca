// Shared plumbing for benchmarks: every benchmark is `benchmarks/NAME.ts`, exports `describe` (what it
// measures, one sentence) and `run(options)`, and returns one flat JSON object. `npx chorus bench NAME`
// prints it. Figures are ratios against a baseline measured in the same run: these machines are shared
// and noisy, so absolute numbers vary from run to run.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

let clockTicksPerSecond: number | undefined;

/** The kernel's clock tick (USER_HZ) that /proc counts CPU time in: `getconf CLK_TCK`, 100 if unknown. */
const clockTicks = (): number => {
  if (clockTicksPerSecond === undefined) {
    let ticks = Number.NaN;
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      // no getconf: Linux's USER_HZ is 100 on every common architecture
    }
    clockTicksPerSecond = Number.isSafeInteger(ticks) && ticks > 0 ? ticks : 100;
  }
  return clockTicksPerSecond;
};

/**
 * CPU time another process has used so far, user + system over all its threads (worker threads included,
 * also those that have exited), in microseconds, from /proc/PID/stat; undefined where there is no /proc
 * (not Linux) or the process is gone. Its resolution is the clock tick (10 ms at USER_HZ 100).
 */
export const processCpuMicros = (pid: number): number | undefined => {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so count fields after the last ')'.
  // utime and stime are fields 14 and 15 of the line, 12th and 13th after COMM.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? (ticks * 1e6) / clockTicks() : undefined;
};

/** The summed CPU time of several processes (processCpuMicros), or undefined if any cannot be read. */
export const processesCpuMicros = (pids: readonly number[]): number | undefined => {
  let total = 0;
  for (const pid of pids) {
    const micros = processCpuMicros(pid);
    if (micros === undefined) return undefined;
    total += micros;
  }
  return total;
};
