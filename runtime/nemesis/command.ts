// `npx chorus nemesis`: the options as the command line gives them, turned into a run; prints the
// readable report (or one JSON object with --json) and returns the exit code: 0 no violations,
// 1 violations, 2 the nemesis cannot run here (it says why).

import { FAULT_FAMILIES, FAULT_KINDS, type FaultKind } from './faults.ts';
import { removeNetwork } from './network.ts';
import { formatReport } from './report.ts';
import { NemesisUnavailableError, runNemesis } from './run.ts';
import type { WorkloadName } from './workloads.ts';

export interface NemesisCommandOptions {
  readonly seed?: number;
  readonly members: 3 | 5;
  /** Seconds of faults. */
  readonly duration: number;
  readonly faults: string;
  readonly workload: string;
  /** snapshot.everyEntries, or 'off'. */
  readonly snapshotEvery: string;
  readonly sessions: number;
  readonly inFlight: number;
  readonly maxGapMs?: number;
  readonly keep?: boolean;
  readonly json?: boolean;
}

/** A family name or a comma-separated list of fault kinds; throws naming what is unknown. */
export const parseFaults = (text: string): FaultKind[] => {
  if (text in FAULT_FAMILIES) return [...FAULT_FAMILIES[text]];
  const kinds = text.split(',').map((k) => k.trim());
  const unknown = kinds.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new Error(
      `unknown fault ${unknown.join(', ')}; give a family (${Object.keys(FAULT_FAMILIES).join(', ')}) or kinds (${FAULT_KINDS.join(', ')})`,
    );
  return kinds as FaultKind[];
};

export const nemesisCommand = async (options: NemesisCommandOptions): Promise<number> => {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  if (options.workload !== 'kv' && options.workload !== 'actors') {
    say(`chorus: --workload must be kv or actors, got "${options.workload}"`);
    return 2;
  }
  const snapshotEveryEntries = options.snapshotEvery === 'off' ? null : Number(options.snapshotEvery);
  if (
    snapshotEveryEntries !== null &&
    !(Number.isInteger(snapshotEveryEntries) && snapshotEveryEntries > 0)
  ) {
    say(`chorus: --snapshot-every must be a positive whole number or off, got "${options.snapshotEvery}"`);
    return 2;
  }
  let faults: FaultKind[];
  try {
    faults = parseFaults(options.faults);
  } catch (error) {
    say(`chorus: ${(error as Error).message}`);
    return 2;
  }
  const seed = options.seed ?? Math.floor(Math.random() * 1_000_000);
  // Ctrl-C or a kill mid-run: remove the namespaces and the members before going (the lock, left behind,
  // is stale once this process is gone, and the next run takes it over).
  const abort = (signal: NodeJS.Signals) => {
    say(`chorus: ${signal}: removing the nemesis network and members`);
    removeNetwork();
    process.exit(130);
  };
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  try {
    const report = await runNemesis({
      seed,
      members: options.members,
      durationMs: options.duration * 1000,
      faults,
      workload: options.workload as WorkloadName,
      snapshotEveryEntries,
      sessions: options.sessions,
      inFlight: options.inFlight,
      maxGapMs: options.maxGapMs,
      keepDir: options.keep,
      log: options.json ? undefined : say,
    });
    process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.violations.length === 0 ? 0 : 1;
  } catch (error) {
    if (error instanceof NemesisUnavailableError) {
      say(`chorus: nemesis skipped: ${error.message}`);
      return 2;
    }
    throw error;
  }
};
