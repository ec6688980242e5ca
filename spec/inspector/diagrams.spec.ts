// The SVG statecharts (runtime/inspector/diagrams/): every state of a machine drawn once with its
// `data-state` path, inside its parent's box and clear of its siblings; every transition with a target
// drawn as an arrow with its source, target and event; an initial dot per compound state; the same text
// every time (the committed docs/diagrams/*.svg are checked); and `chorus diagrams --module` drawing a
// services module's actor types.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { type AnyStateMachine, createMachine } from 'xstate';
import { machineNames, machines } from '../../machines/index.ts';
import { checkDiagrams, diagramsCommand } from '../../runtime/diagrams.ts';
import { layoutGraph } from '../../runtime/inspector/diagrams/layout.ts';
import { machineGraph } from '../../runtime/inspector/diagrams/machine-graph.ts';
import { layoutSvg, renderSvg } from '../../runtime/inspector/diagrams/svg.ts';

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Each `<g ... data-state="P">` and the first rect inside it. */
const stateRects = (svg: string): Map<string, Rect> => {
  const out = new Map<string, Rect>();
  const re =
    /<g class="state[^"]*" data-state="([^"]*)">[\s\S]*?<rect x="([\d.-]+)" y="([\d.-]+)" width="([\d.]+)" height="([\d.]+)"/g;
  for (const m of svg.matchAll(re)) {
    expect(out.has(m[1] ?? ''), `state ${m[1]} drawn twice`).to.equal(false);
    out.set(m[1] ?? '', { x: Number(m[2]), y: Number(m[3]), width: Number(m[4]), height: Number(m[5]) });
  }
  return out;
};

const inside = (inner: Rect, outer: Rect): boolean =>
  inner.x >= outer.x &&
  inner.y >= outer.y &&
  inner.x + inner.width <= outer.x + outer.width &&
  inner.y + inner.height <= outer.y + outer.height;

const overlap = (a: Rect, b: Rect): boolean =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

describe('SVG statecharts (runtime/inspector/diagrams)', () => {
  it('draws every state once with its path, children inside their parent and clear of their siblings', async () => {
    for (const name of machineNames()) {
      const machine = machines[name] as AnyStateMachine;
      const svg = await renderSvg(machine, name);
      const graph = machineGraph(machine);
      const rects = stateRects(svg);
      expect([...rects.keys()].sort(), name).to.deep.equal(graph.states.map((s) => s.path).sort());
      for (const state of graph.states) {
        const rect = rects.get(state.path) as Rect;
        expect(rect.width, `${name} ${state.path} width`).to.be.above(0);
        if (state.parent !== '') {
          expect(
            inside(rect, rects.get(state.parent) as Rect),
            `${name}: ${state.path} inside ${state.parent}`,
          ).to.equal(true);
        }
        for (const sibling of graph.states) {
          if (
            sibling.path < state.path &&
            sibling.parent === state.parent &&
            state.path !== '' &&
            sibling.path !== ''
          ) {
            expect(
              overlap(rect, rects.get(sibling.path) as Rect),
              `${name}: ${state.path} / ${sibling.path}`,
            ).to.equal(false);
          }
        }
      }
    }
  });

  it('draws one arrow per target of every transition, with source, target and event, and an initial dot per compound state', async () => {
    const svg = await renderSvg(machines.election as AnyStateMachine, 'election');
    const graph = machineGraph(machines.election as AnyStateMachine);
    const arrows = [
      ...svg.matchAll(
        /<g class="transition[^"]*" data-index="\d+" data-source="([^"]*)" data-target="([^"]*)" data-event="([^"]*)">/g,
      ),
    ];
    expect(arrows.map((m) => `${m[1]}>${m[2]}:${m[3]}`).sort()).to.deep.equal(
      graph.transitions.map((t) => `${t.source}>${t.target}:${t.label.split(' [')[0]}`).sort(),
    );
    expect(svg).to.include('data-source="BALLOT.CANVASS" data-target="BALLOT.NOMINATE" data-event="always"');
    expect(svg).to.include('data-source="BALLOT" data-target="FOLLOWER_PATH" data-event="LEADER_DISCOVERED"');
    expect(svg).to.include('data-source="" data-target="CLOSED" data-event="CLOSE"');
    expect(svg).to.match(/<g class="state atomic final" data-state="CLOSED">/);
    // The root and each compound state with an initial child: INIT, BALLOT.CANVASS, LEADER_LOG_REPLICATION, FOLLOWER_LOG_REPLICATION.
    const dots = [...svg.matchAll(/data-initial-of="([^"]*)"/g)].map((m) => m[1]);
    expect(dots.sort()).to.deep.equal(['', 'BALLOT', 'FOLLOWER_PATH', 'LEADER_PATH']);
  });

  it('marks delayed and guarded transitions and lists internal ones in their state', async () => {
    const machine = createMachine({
      id: 'sample',
      initial: 'A',
      states: {
        A: { after: { 500: 'B' }, on: { POKE: { guard: 'ready', target: 'B' }, TICK: { actions: 'count' } } },
        B: { type: 'final' },
      },
    });
    const svg = await renderSvg(machine);
    expect(svg).to.match(
      /<g class="transition delayed" [^>]*data-source="A" data-target="B" data-event="after 500 ms">/,
    );
    expect(svg).to.match(/<g class="transition guarded" [^>]*data-event="POKE">/);
    expect(svg).to.include('POKE [ready]</text>');
    expect(svg).to.include('↻ 1 internal transition</text>');
    expect(svg).to.include('  TICK / count');
  });

  it('gives the same text every time, and the committed docs/diagrams SVGs match the machines', async () => {
    // Two layouts of their own (renderSvg keeps the first it drew).
    const graph = machineGraph(machines['client-session'] as AnyStateMachine);
    const first = layoutSvg(await layoutGraph(graph), 'client-session');
    expect(layoutSvg(await layoutGraph(graph), 'client-session')).to.equal(first);
    expect(await checkDiagrams(join(import.meta.dirname, '..', '..', 'docs', 'diagrams'))).to.deep.equal([]);
  });

  it('diagrams --module draws a services module (or says why a module does not load), and --check finds a stale or left-over SVG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-svg-'));
    const lines: string[] = [];
    try {
      const module = join(import.meta.dirname, '..', '..', 'examples', 'bank-service.ts');
      expect(await diagramsCommand({ module, dir, format: 'svg' }, (l) => lines.push(l))).to.equal(0);
      expect(lines).to.deep.equal([`wrote ${join(dir, 'bank.account.svg')}`]);
      const svg = readFileSync(join(dir, 'bank.account.svg'), 'utf8');
      for (const state of ['OPEN', 'FROZEN', 'CLOSED']) expect(svg).to.include(`data-state="${state}"`);
      expect(
        await diagramsCommand({ module, dir, format: 'svg', check: true }, (l) => lines.push(l)),
      ).to.equal(0);
      writeFileSync(join(dir, 'bank.account.svg'), svg.replace('OPEN', 'OPENED'));
      writeFileSync(join(dir, 'gone.svg'), '<svg/>');
      lines.length = 0;
      expect(
        await diagramsCommand({ module, dir, format: 'svg', check: true }, (l) => lines.push(l)),
      ).to.equal(1);
      expect(lines).to.deep.equal([
        `stale: ${join(dir, 'bank.account.svg')}`,
        `left over: ${join(dir, 'gone.svg')}`,
        `regenerate with: npx chorus diagrams ${dir} --format svg --module ${module}`,
      ]);
      lines.length = 0;
      expect(await diagramsCommand({ module: join(dir, 'none.ts'), dir }, (l) => lines.push(l))).to.equal(1);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(
        /^--module: cannot load file:.*none\.ts: no such module; give the path of a module exporting `services`/,
      );
      lines.length = 0;
      expect(await diagramsCommand({ dir, format: 'png' }, (l) => lines.push(l))).to.equal(2);
      expect(lines).to.deep.equal(['--format png: give svg or mermaid (or leave it out for both)']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
