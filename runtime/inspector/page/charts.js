// Statecharts on the page: the SVG the inspector draws (runtime/inspector/diagrams/svg.ts), whose states
// carry data-state="PATH" and arrows data-source/data-target/data-event. Highlighting marks the states a
// value makes active (and their parents); badges place each member on its state; a transition flashes
// the arrow it took and the state it entered.

import { getText, memberPath } from './api.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** One colour per member id (cycled). */
export const memberColor = (id) =>
  ['#2f6fdb', '#d35400', '#16a085', '#8e44ad', '#c0392b', '#7f8c8d'][Number(id) % 6];

const svgCache = new Map();

/** Load machine `id`'s SVG from a member into `container` (once per container and machine). */
export const loadChart = async (container, memberId, machineId) => {
  if (container.dataset.loaded === machineId) return true;
  const key = machineId;
  let result = svgCache.get(key);
  if (!result?.ok) {
    result = await getText(memberPath(memberId, `/machines/${encodeURIComponent(machineId)}.svg`));
    svgCache.set(key, result);
  }
  if (!result.ok) {
    container.textContent = '';
    const box = document.createElement('div');
    box.className = 'error';
    box.textContent = `the ${machineId} statechart cannot be drawn: ${result.error}`;
    container.append(box);
    delete container.dataset.loaded;
    return false;
  }
  container.innerHTML = result.data;
  container.dataset.loaded = machineId;
  return true;
};

const statesOf = (container) => [...container.querySelectorAll('g.state[data-state]')];

/** The dotted paths an XState value makes active: 'A' → [A]; { A: 'B' } → [A, A.B]; parallel too. */
export const activePaths = (value, prefix = '') => {
  if (typeof value === 'string') return [prefix + value];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, child]) => [
    prefix + key,
    ...activePaths(child, `${prefix + key}.`),
  ]);
};

/** The chart's path for a state named by its leaf (`CANVASS` → `BALLOT.CANVASS`), or the name if none. */
export const pathOfLeaf = (container, leaf) => {
  const match = statesOf(container).find((g) => {
    const path = g.dataset.state;
    return path === leaf || path.endsWith(`.${leaf}`);
  });
  return match ? match.dataset.state : leaf;
};

/** The path and its ancestors: 'A.B.C' → [A, A.B, A.B.C]. */
const withAncestors = (path) => path.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'));

/** Mark the active states of a value (xstate value, or a leaf name when `leaf` is set). */
export const highlight = (container, value) => {
  const paths = new Set(
    typeof value === 'string' ? withAncestors(pathOfLeaf(container, value)) : activePaths(value),
  );
  for (const g of statesOf(container)) g.classList.toggle('active', paths.has(g.dataset.state));
  return paths;
};

const rectOf = (container, path) =>
  container.querySelector(`g.state[data-state="${CSS.escape(path)}"] > rect`);

/**
 * Put badges on states: `placements` is [{ key, label, color, path }]; badges on one state line up from
 * its top-right corner. Other badges are removed; every badged state (and its parents) is marked active.
 */
export const placeBadges = (container, placements) => {
  const svg = container.querySelector('svg');
  if (!svg) return;
  for (const old of svg.querySelectorAll('g.badge')) old.remove();
  const active = new Set();
  const perState = new Map();
  for (const placement of placements) {
    const rect = rectOf(container, placement.path);
    if (!rect) continue;
    for (const p of withAncestors(placement.path)) active.add(p);
    const n = perState.get(placement.path) ?? 0;
    perState.set(placement.path, n + 1);
    const x = Number(rect.getAttribute('x')) + Number(rect.getAttribute('width')) - 9 - n * 20;
    const y = Number(rect.getAttribute('y')) - 2;
    const g = document.createElementNS(SVG_NS, 'g');
    g.setAttribute('class', 'badge');
    g.setAttribute('data-badge', placement.key);
    g.setAttribute('data-on', placement.path);
    const circle = document.createElementNS(SVG_NS, 'circle');
    circle.setAttribute('cx', x);
    circle.setAttribute('cy', y);
    circle.setAttribute('r', 9);
    circle.setAttribute('fill', placement.color);
    const text = document.createElementNS(SVG_NS, 'text');
    text.setAttribute('x', x);
    text.setAttribute('y', y + 4);
    text.setAttribute('text-anchor', 'middle');
    text.textContent = placement.label;
    g.append(circle, text);
    svg.append(g);
  }
  for (const g of statesOf(container)) g.classList.toggle('active', active.has(g.dataset.state));
};

/**
 * Flash the arrow a transition took (from and to are leaf names or paths, event the chart event that
 * moved it): among the arrows whose source is `from` or one of its parents and whose target is `to` or
 * one of its parents, the one for `event`, else the innermost. An arrow from `any state` counts only for
 * its own event. The entered state flashes as well. Returns the arrow, or null when the chart has none
 * (a run of eventless steps reported as one change).
 */
export const flashTransition = (container, from, to, event = '') => {
  const fromPath = pathOfLeaf(container, from);
  const toPath = pathOfLeaf(container, to);
  const within = (path, outer) => path === outer || path.startsWith(`${outer}.`);
  const candidates = [...container.querySelectorAll('g.transition')].filter(
    (g) =>
      within(toPath, g.dataset.target) &&
      (g.dataset.source === '' ? g.dataset.event === event : within(fromPath, g.dataset.source)),
  );
  const arrow =
    candidates.find((g) => event !== '' && g.dataset.event === event) ??
    candidates
      .filter((g) => g.dataset.source !== '')
      .sort((a, b) => b.dataset.source.length - a.dataset.source.length)[0] ??
    null;
  if (arrow) restartAnimation(arrow, 'fired');
  const entered = container.querySelector(`g.state[data-state="${CSS.escape(toPath)}"]`);
  if (entered) restartAnimation(entered, 'entered');
  return arrow;
};

const timers = new WeakMap();
const restartAnimation = (node, name) => {
  node.classList.remove(name);
  void node.getBoundingClientRect(); // restart the CSS animation
  node.classList.add(name);
  clearTimeout(timers.get(node));
  timers.set(
    node,
    setTimeout(() => node.classList.remove(name), 2000),
  );
};
