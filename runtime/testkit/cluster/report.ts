// What a TestCluster's checks found, and the error a failed run throws: it names the seed that replays it.

import type { Violation } from '../../sim/invariants.ts';
import type { LinearizabilityVerdict } from './checks.ts';

export interface TestClusterReport {
  readonly seed: number;
  readonly ok: boolean;
  readonly violations: readonly Violation[];
  readonly linearizability: readonly LinearizabilityVerdict[];
  /** Commands sent, and answered as applied (refusals at the service edge left out). */
  readonly commands: number;
  readonly acknowledged: number;
  readonly faultsInjected: number;
  readonly elections: number;
  /** Virtual ms the run lasted. */
  readonly virtualMs: number;
  /** How to run exactly this again. */
  readonly replay: string;
}

/** A TestCluster run broke an invariant; the message names the seed that replays it. */
export class TestClusterFailure extends Error {
  override readonly name = 'TestClusterFailure';
  constructor(readonly report: TestClusterReport) {
    super(describeFailure(report));
  }
}

const describeFailure = (report: TestClusterReport): string => {
  const lines = [`TestCluster seed ${report.seed} failed (${report.replay}):`];
  for (const v of report.violations.slice(0, 8)) {
    lines.push(
      `  ${v.invariant} at ${Math.round(v.time)} ms${v.member >= 0 ? ` on member ${v.member}` : ''}: ${v.detail}`,
    );
  }
  if (report.violations.length > 8) lines.push(`  ... and ${report.violations.length - 8} more`);
  for (const verdict of report.linearizability) {
    if (verdict.linearizable) continue;
    lines.push(
      `  ${verdict.timedOut ? 'LINEARIZABILITY_UNDECIDED' : 'NOT_LINEARIZABLE'} (${verdict.model}): ${verdict.explanation ?? ''}`,
    );
  }
  return lines.join('\n');
};
