// Runs one benchmark module and prints its result: one JSON object, then (unless --json) a summary line.

import type { Benchmark, BenchOptions } from './harness.ts';

export const runBenchmark = async (name: string, options: BenchOptions): Promise<void> => {
  const bench = (await import(`./${name}.ts`)) as Benchmark;
  if (!options.json) process.stderr.write(`bench ${name}: ${bench.describe}\n`);
  const result = await bench.run(options);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!options.json) {
    const figures = Object.entries(result)
      .filter(([key, value]) => typeof value === 'number' && key !== 'benchmark')
      .map(([key, value]) => `${key}=${value}`)
      .join(' ');
    process.stderr.write(`bench ${name}: ${figures}\n`);
  }
};
