// A nemesis run's report: one JSON object (`chorus nemesis --json`) and a readable summary. Availability
// is what the clients saw: the longest stretch without a successful command, over the whole fault phase
// and after each fault (until the next one starts).

import type { ExactlyOnceSummary, Violation } from './checks.ts';
import type { MemberExit } from './cluster.ts';
import type { FaultKind, FaultRecord, FaultStep } from './faults.ts';
import { type CommandRecord, longestGap, type WorkloadName } from './workloads.ts';

/** Faults that take out one member only: the availability goal (≤ 1.5 s on 3 members) applies to these. */
const SINGLE_MEMBER: ReadonlySet<FaultKind> = new Set([
  'isolate-leader',
  'isolate-follower',
  'asymmetric-cut',
  'kill-leader',
  'kill-follower',
  'pause-leader',
]);

export interface FaultAvailability {
  readonly kind: FaultKind;
  readonly startedMs: number;
  readonly singleMember: boolean;
  /** Longest gap without a successful command from the fault's start to the next fault's start. */
  readonly gapMs: number;
}

export interface Availability {
  readonly longestGapMs: number;
  readonly longestGapAtMs: number;
  readonly perFault: readonly FaultAvailability[];
  /** The worst gap after a single-member fault (the goal is ≤ 1.5 s on 3 members). */
  readonly worstSingleMemberGapMs: number;
}

export const availability = (
  records: readonly CommandRecord[],
  faults: readonly FaultRecord[],
  phase: { start: number; end: number },
): Availability => {
  const whole = longestGap(records, phase.start, Math.max(phase.start, phase.end));
  const perFault = faults.map((fault, i) => ({
    kind: fault.kind,
    startedMs: fault.startedMs,
    singleMember: SINGLE_MEMBER.has(fault.kind),
    gapMs: longestGap(
      records,
      fault.startedMs,
      faults[i + 1]?.startedMs ?? Math.max(fault.endedMs, phase.end),
    ).gapMs,
  }));
  return {
    longestGapMs: Math.round(whole.gapMs),
    longestGapAtMs: Math.round(whole.startMs),
    perFault: perFault.map((f) => ({ ...f, startedMs: Math.round(f.startedMs), gapMs: Math.round(f.gapMs) })),
    worstSingleMemberGapMs: Math.round(
      Math.max(0, ...perFault.filter((f) => f.singleMember).map((f) => f.gapMs)),
    ),
  };
};

export interface NemesisReport {
  readonly seed: number;
  readonly members: number;
  readonly workload: WorkloadName;
  readonly durationMs: number;
  /** When the faults began, ms after the members were started (report times are from there). */
  readonly faultPhaseStartMs: number;
  readonly snapshotEveryEntries: number | null;
  readonly schedule: readonly FaultStep[];
  readonly faults: readonly FaultRecord[];
  readonly operations: {
    readonly sent: number;
    readonly acknowledged: number;
    readonly unknown: number;
    readonly byService: Record<string, number>;
    readonly sessionErrors: readonly string[];
  };
  readonly availability: Availability;
  readonly exactlyOnce: ExactlyOnceSummary | null;
  readonly logs: readonly { id: number; firstIndex: number; lastIndex: number; snapshotIndex: number }[];
  /** Terms in which some member became leader. */
  readonly terms: number;
  readonly exits: readonly Omit<MemberExit, 'lastLines'>[];
  readonly violations: readonly Violation[];
  /** The members' directories, kept when the run found a violation (or was asked to keep them). */
  readonly dir: string | null;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The report for a person. */
export const formatReport = (report: NemesisReport): string => {
  const { operations: ops, availability: avail } = report;
  const lines = [
    `chorus nemesis --seed ${report.seed} --members ${report.members} --workload ${report.workload}` +
      ` (snapshots ${report.snapshotEveryEntries === null ? 'on request only' : `every ${report.snapshotEveryEntries} entries`})`,
    `  ${seconds(report.durationMs)}, ${report.faults.length} faults, ${report.terms} terms with a leader, ` +
      `${report.exits.length} member exits (${report.exits.filter((e) => !e.caused).length} not caused by the nemesis)`,
    `  operations: ${ops.sent} sent, ${ops.acknowledged} acknowledged, ${ops.unknown} without a reply ` +
      `(${Object.entries(ops.byService)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ')})`,
  ];
  if (report.exactlyOnce)
    lines.push(
      `  exactly once: ${report.exactlyOnce.verifiedInLog} of ${report.exactlyOnce.acknowledged} acknowledged commands found in the replayed log (from index ${report.exactlyOnce.replayedFrom}); ${report.exactlyOnce.resent} with more than one copy there (resends)`,
    );
  lines.push(
    `  logs: ${report.logs.map((l) => `member ${l.id} ${l.firstIndex}..${l.lastIndex}${l.snapshotIndex ? ` (snapshot ${l.snapshotIndex})` : ''}`).join(', ')}`,
    `  availability: longest gap ${avail.longestGapMs} ms (at ${seconds(avail.longestGapAtMs - report.faultPhaseStartMs)} from the start of the faults); worst after a single-member fault ${avail.worstSingleMemberGapMs} ms (goal 1500 ms on 3 members)`,
    '  faults:',
    ...report.faults.map(
      (f, i) =>
        `    ${seconds(f.startedMs - report.faultPhaseStartMs).padStart(7)}  ${f.kind.padEnd(20)} gap ${String(avail.perFault[i]?.gapMs ?? 0).padStart(5)} ms  ${f.note}`,
    ),
  );
  for (const error of ops.sessionErrors) lines.push(`  session ended: ${error}`);
  if (report.violations.length === 0) lines.push('  verdict: no violations');
  else {
    lines.push(
      `  verdict: ${report.violations.length} violation${report.violations.length === 1 ? '' : 's'}`,
    );
    for (const v of report.violations.slice(0, 30)) lines.push(`    [${v.check}] ${v.detail}`);
    if (report.violations.length > 30)
      lines.push(`    ... and ${report.violations.length - 30} more (see --json)`);
  }
  if (report.dir) lines.push(`  member directories kept in ${report.dir}`);
  return `${lines.join('\n')}\n`;
};
