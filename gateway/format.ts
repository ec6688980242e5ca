// How `chorus gateway plan | explain | status` print an answer for a person (`--json` prints it as it
// came). An answer of a shape these do not know is printed as YAML, so nothing is ever hidden.

import { stringify as toYaml } from 'yaml';

type Fields = Record<string, unknown>;
const isFields = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown) => (typeof v === 'number' ? Number(v.toFixed(3)) : '?');

const formatPlan = (value: Fields): string | null => {
  const plan = value.plan;
  if (!isFields(plan) || !Array.isArray(plan.moves)) return null;
  const lines = [
    `rules version ${String(value.rulesVersion)}: ${plan.moves.length} move(s); nothing applied`,
  ];
  for (const move of plan.moves as Fields[]) {
    lines.push(
      `  ${String(move.party)}: ${String(move.from ?? '(none)')} → ${String(move.to)} (${String(move.reason)})`,
    );
  }
  lines.push(
    `rebalance budget this round: ${String(plan.rebalanceMovesUsed)} of ${String(plan.rebalanceBudget)} used`,
    `imbalance: ${num(plan.imbalanceBefore)} → ${num(plan.imbalanceAfter)}`,
  );
  if (Array.isArray(plan.unplaced) && plan.unplaced.length > 0) {
    lines.push(`no gateway can serve: ${plan.unplaced.join(', ')}`);
  }
  return lines.join('\n');
};

const formatExplain = (value: Fields): string | null => {
  if (typeof value.party !== 'string' || !Array.isArray(value.gateways)) return null;
  if (typeof value.problem === 'string') return `${value.party}: ${value.problem}`;
  const lines = [
    `${value.party}: owner ${String(value.owner ?? '(none)')}, chosen ${String(value.chosen ?? '(none)')}` +
      (value.tieBreak ? ` (tie-break: ${String(value.tieBreak)})` : ''),
  ];
  for (const g of value.gateways as Fields[]) {
    lines.push(
      `  ${String(g.gateway)} [${String(g.state)}, ${String(g.load)}/${String(g.capacity)}]` +
        `${g.chosen ? ' CHOSEN' : ''}: total ${g.total === null ? '— (not eligible)' : num(g.total)}`,
    );
    for (const f of (g.filters as Fields[]) ?? []) {
      lines.push(`    filter ${String(f.filter)}: ${f.pass ? 'pass' : `FAIL — ${String(f.reason ?? '')}`}`);
    }
    for (const s of (g.scores as Fields[]) ?? []) {
      lines.push(
        `    score ${String(s.score)}: ${num(s.weight)} × ${num(s.value)} = ${num(s.contribution)}` +
          (s.error ? ` (${String(s.error)})` : ''),
      );
    }
  }
  return lines.join('\n');
};

const formatStatus = (value: Fields): string | null => {
  if (!Array.isArray(value.gateways) || !Array.isArray(value.parties)) return null;
  const lines = [`rules version ${String(value.rulesVersion)}`, 'gateways:'];
  for (const g of value.gateways as Fields[]) {
    lines.push(`  ${String(g.name)}  ${String(g.state)}  ${String(g.parties)}/${String(g.capacity)} parties`);
  }
  lines.push('parties:');
  for (const p of value.parties as Fields[]) {
    lines.push(
      `  ${String(p.id)}  ${String(p.state)}  owner ${String(p.owner ?? '(none)')}  epoch ${String(p.epoch)}` +
        (p.target ? `  → ${String(p.target)}` : ''),
    );
  }
  return lines.join('\n');
};

/** The answer of `kind` for a person. */
export const formatAnswer = (kind: string, value: unknown): string => {
  const known = !isFields(value)
    ? null
    : kind === 'plan'
      ? formatPlan(value)
      : kind === 'explain'
        ? formatExplain(value)
        : kind === 'status'
          ? formatStatus(value)
          : null;
  return `${known ?? toYaml(value).trimEnd()}\n`;
};
