// A statechart as a standalone SVG: machine definition → graph (machine-graph.ts) → elkjs layout
// (layout.ts) → SVG text. Every state is a `<g class="state" data-state="PATH">` (PATH dotted, as
// `BALLOT.CANVASS`), every arrow a `<g class="transition" data-source data-target data-event>`, so a
// page highlights the current state and animates a transition by selecting on those attributes. The
// SVG carries its own styles (no external CSS, fonts or scripts) and reads the same with none added.

import type { AnyStateMachine } from 'xstate';
import {
  FONT_SIZE,
  INITIAL_DOT,
  internalNote,
  type Layout,
  LINE_HEIGHT,
  layoutGraph,
  type PlacedEdge,
  type PlacedState,
  TITLE_HEIGHT,
} from './layout.ts';
import { machineGraph } from './machine-graph.ts';

const escapeXml = (text: string): string =>
  text.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const num = (n: number): string => String(Math.round(n * 10) / 10);

const STYLE = `
.chorus-statechart { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: ${FONT_SIZE}px; }
.chorus-statechart .state > rect { fill: #ffffff; stroke: #5b6b7f; stroke-width: 1.2; }
.chorus-statechart .state.compound > rect { fill: #f3f6fa; }
.chorus-statechart .state.final > rect { stroke-width: 3; }
.chorus-statechart .state.any > rect { fill: #fbfbf3; stroke-dasharray: 4 3; }
.chorus-statechart .state .name { font-weight: 600; fill: #1d2733; }
.chorus-statechart .state .note { fill: #6b7785; font-size: ${FONT_SIZE - 1}px; }
.chorus-statechart .transition path { fill: none; stroke: #8a96a3; stroke-width: 1.1; }
.chorus-statechart .transition.delayed path { stroke-dasharray: 5 3; }
.chorus-statechart .transition text { fill: #3d4a57; font-size: ${FONT_SIZE - 1}px; }
.chorus-statechart .transition .label-bg { fill: #ffffff; opacity: 0.85; }
.chorus-statechart .initial { fill: #1d2733; }
`;

const stateSvg = (placed: PlacedState): string => {
  const { state } = placed;
  const classes = [
    'state',
    placed.compound ? 'compound' : 'atomic',
    ...(state.type === 'final' ? ['final'] : []),
    ...(state.type === 'parallel' ? ['parallel'] : []),
    ...(state.path === '' ? ['any'] : []),
  ].join(' ');
  const x = num(placed.x);
  const y = num(placed.y);
  const tooltip = [state.path || 'any state', ...state.internal.map((t) => `  ${t}`)].join('\n');
  const lines: string[] = [
    `<g class="${classes}" data-state="${escapeXml(state.path)}">`,
    `<title>${escapeXml(tooltip)}</title>`,
    `<rect x="${x}" y="${y}" width="${num(placed.width)}" height="${num(placed.height)}" rx="8" ry="8"/>`,
  ];
  if (placed.compound) {
    lines.push(
      `<text class="name" x="${num(placed.x + 10)}" y="${num(placed.y + TITLE_HEIGHT - 6)}">${escapeXml(state.key)}</text>`,
      `<line x1="${x}" y1="${num(placed.y + TITLE_HEIGHT)}" x2="${num(placed.x + placed.width)}" y2="${num(placed.y + TITLE_HEIGHT)}" stroke="#c9d2dc"/>`,
    );
  } else {
    const cx = num(placed.x + placed.width / 2);
    const first = placed.y + 7 + LINE_HEIGHT - 4;
    lines.push(
      `<text class="name" x="${cx}" y="${num(first)}" text-anchor="middle">${escapeXml(state.key)}</text>`,
    );
    if (state.internal.length > 0) {
      lines.push(
        `<text class="note" x="${cx}" y="${num(first + LINE_HEIGHT)}" text-anchor="middle">${escapeXml(internalNote(state))}</text>`,
      );
    }
  }
  lines.push('</g>');
  return lines.join('');
};

const edgeSvg = (edge: PlacedEdge, index: number): string => {
  if (edge.points.length < 2) return '';
  const d = edge.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${num(p.x)} ${num(p.y)}`).join(' ');
  const t = edge.transition;
  if (t === null)
    return `<g class="initial-arrow"><path d="${d}" fill="none" stroke="#1d2733" marker-end="url(#arrow)"/></g>`;
  const event = t.label.split(' [')[0] ?? t.label;
  const classes = ['transition', ...(t.delayed ? ['delayed'] : []), ...(t.guarded ? ['guarded'] : [])].join(
    ' ',
  );
  const parts = [
    `<g class="${classes}" data-index="${index}" data-source="${escapeXml(t.source)}" data-target="${escapeXml(t.target)}" data-event="${escapeXml(event)}">`,
    `<title>${escapeXml(`${t.source || 'any state'} → ${t.target}: ${t.detail}`)}</title>`,
    `<path d="${d}" marker-end="url(#arrow)"/>`,
  ];
  if (edge.label) {
    const { x, y, width, height, text } = edge.label;
    parts.push(
      `<rect class="label-bg" x="${num(x)}" y="${num(y)}" width="${num(width)}" height="${num(height)}"/>`,
      `<text x="${num(x)}" y="${num(y + height - 4)}">${escapeXml(text)}</text>`,
    );
  }
  parts.push('</g>');
  return parts.join('');
};

/** The SVG text of a laid-out graph. */
export const layoutSvg = (layout: Layout, title: string): string => {
  const width = num(layout.width);
  const height = num(layout.height);
  // Compound states first (outermost first, as listed), so their children and the arrows draw over them.
  const ordered = [...layout.states].sort((a, b) => Number(b.compound) - Number(a.compound));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chorus-statechart" data-machine="${escapeXml(title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${escapeXml(title)} statechart</title>`,
    `<style>${STYLE}</style>`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#5b6b7f"/></marker></defs>',
    ...ordered.map(stateSvg),
    ...layout.initialDots.map(
      (dot) =>
        `<circle class="initial" data-initial-of="${escapeXml(dot.parent)}" cx="${num(dot.x + INITIAL_DOT / 2)}" cy="${num(dot.y + INITIAL_DOT / 2)}" r="${INITIAL_DOT / 2}"/>`,
    ),
    ...layout.edges.map(edgeSvg),
    '</svg>',
    '',
  ].join('\n');
};

const drawn = new WeakMap<AnyStateMachine, Map<string, Promise<string>>>();

/**
 * A standalone SVG of an XState machine, laid out by elkjs, generated from its definition. A machine is
 * laid out once per process and title (a definition does not change while it runs).
 */
export const renderSvg = (machine: AnyStateMachine, title: string = machine.id): Promise<string> => {
  let byTitle = drawn.get(machine);
  if (!byTitle) {
    byTitle = new Map();
    drawn.set(machine, byTitle);
  }
  let svg = byTitle.get(title);
  if (!svg) {
    const rendering = layoutGraph(machineGraph(machine)).then((layout) => layoutSvg(layout, title));
    svg = rendering;
    // A failed layout is not kept: the next request tries again.
    rendering.catch(() => byTitle.delete(title));
    byTitle.set(title, rendering);
  }
  return svg;
};
