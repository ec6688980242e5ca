// The machines registry and the diagrams generated from it: every machine file is registered, names
// follow the UPPER_SNAKE_CASE rule, every state and event shows up in its Mermaid diagram, and the
// committed pages in docs/diagrams match what the machines generate today. (The runbook's own check is
// spec/docs/runbook.spec.ts.)

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { type AnyStateMachine, and, createMachine, not, StateMachine } from 'xstate';
import { CLIENT_CONNECTION_STATES } from '../../machines/client-connection.ts';
import { CLIENT_SESSION_STATES } from '../../machines/client-session.ts';
import { MODULE_STATES } from '../../machines/consensus-module.ts';
import { ELECTION_STATE_PATHS } from '../../machines/election.ts';
import { GATEWAY_STATES } from '../../machines/gateway-lifecycle.ts';
import { getMachine, type MachineName, machineInfo, machineNames, machines } from '../../machines/index.ts';
import { PARTY_STATES } from '../../machines/party-assignment.ts';
import { TRADING_PHASES } from '../../machines/trading-phase.ts';
import {
  defaultDiagramsDir,
  renderDiagramPage,
  renderMermaid,
  staleDiagrams,
  writeDiagrams,
} from '../../runtime/diagrams.ts';

const machinesDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'machines');

const UPPER_SNAKE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;

interface WalkedNode {
  readonly key: string;
  readonly path: readonly string[];
  readonly states: Record<string, WalkedNode>;
  readonly transitions: Map<string, unknown[]>;
  /** Eventless transitions (drawn as `always`). */
  readonly always?: unknown[];
  readonly after: { eventType: string; delay: string | number }[];
}

/** The spec's own walk of a machine (independent of runtime/diagrams.ts): state paths and events. */
const walk = (machine: AnyStateMachine) => {
  const states: string[] = [];
  const events = new Set<string>();
  const delays = new Set<string>();
  let transitionCount = 0;
  const visit = (node: WalkedNode): void => {
    transitionCount += node.always?.length ?? 0;
    for (const [eventType, candidates] of node.transitions) {
      transitionCount += candidates.length;
      const delayed = node.after.find((t) => t.eventType === eventType);
      if (delayed) delays.add(String(delayed.delay));
      else events.add(eventType);
    }
    for (const child of Object.values(node.states)) {
      states.push(child.path.join('.'));
      visit(child);
    }
  };
  visit(machine.root as unknown as WalkedNode);
  return { states, events: [...events], delays: [...delays], transitionCount };
};

const declaredStates: Record<MachineName, readonly string[]> = {
  election: ELECTION_STATE_PATHS,
  'consensus-module': MODULE_STATES,
  'client-session': CLIENT_SESSION_STATES,
  'client-connection': CLIENT_CONNECTION_STATES,
  'trading-phase': TRADING_PHASES,
  'gateway-lifecycle': GATEWAY_STATES,
  'party-assignment': PARTY_STATES,
};

describe('machines registry (machines/index.ts)', () => {
  it('registers every machine file in machines/ under its file name, and nothing else', async () => {
    const found: Record<string, AnyStateMachine> = {};
    const files = readdirSync(machinesDir).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
    for (const file of files) {
      const module: Record<string, unknown> = await import(pathToFileURL(join(machinesDir, file)).href);
      const exported = Object.entries(module).filter(([, value]) => value instanceof StateMachine);
      expect(exported.length, `machines/${file} should export at most one machine`).to.be.at.most(1);
      if (exported.length === 1) found[basename(file, '.ts')] = exported[0][1] as AnyStateMachine;
    }
    expect(Object.keys(found).sort()).to.deep.equal(machineNames().sort());
    // Load the registry the same way as the files, so both see the same module instances (mocha's
    // static imports and a dynamic import() may be separate module graphs under tsx).
    const registry: { machines: Record<string, unknown> } = await import(
      pathToFileURL(join(machinesDir, 'index.ts')).href
    );
    for (const name of machineNames()) {
      expect(
        registry.machines[name],
        `machines['${name}'] is the machine exported by machines/${name}.ts`,
      ).to.equal(found[name]);
    }
    // The helpers are not machines.
    expect(found).not.to.have.property('random');
    expect(found).not.to.have.property('client-connection-context');
    expect(found).not.to.have.property('election-context');
  });

  it('every registered machine names its states and events in UPPER_SNAKE_CASE', () => {
    for (const name of machineNames()) {
      const { states, events } = walk(machines[name]);
      for (const path of states) {
        for (const key of path.split('.')) expect(key, `${name} state ${path}`).to.match(UPPER_SNAKE);
      }
      for (const event of events.filter((e) => !e.startsWith('xstate.'))) {
        expect(event, `${name} event`).to.match(UPPER_SNAKE);
      }
    }
  });

  it("matches each machine's exported state list, so a state added in one place only is caught", () => {
    for (const name of machineNames()) {
      expect(walk(machines[name]).states.sort(), name).to.deep.equal([...declaredStates[name]].sort());
    }
  });

  it('has a one-line note for every state, and no note for a state that does not exist', () => {
    for (const name of machineNames()) {
      const info = machineInfo[name];
      expect(info.title, name).to.be.a('string').and.not.equal('');
      expect(info.summary, name).to.be.a('string').and.not.equal('');
      expect(Object.keys(info.states).sort(), name).to.deep.equal(walk(machines[name]).states.sort());
      for (const [state, note] of Object.entries(info.states)) {
        expect(note, `${name}.${state}`).to.match(/\S/).and.not.match(/\n/);
      }
    }
  });

  it('getMachine finds a machine by name and refuses an unknown one, listing the names', () => {
    expect(getMachine('election')).to.equal(machines.election);
    expect(() => getMachine('elections')).to.throw(
      RangeError,
      /unknown machine 'elections'.*election, consensus-module/,
    );
  });
});

describe('diagrams (runtime/diagrams.ts)', () => {
  it('every state, event and delay of each machine appears in its Mermaid diagram, one arrow per transition', () => {
    for (const name of machineNames()) {
      const mermaid = renderMermaid(machines[name]);
      const { states, events, delays, transitionCount } = walk(machines[name]);
      expect(mermaid.startsWith('stateDiagram-v2\n'), name).to.equal(true);
      for (const path of states) {
        // Either drawn under its own id, or declared with its name (`state "NAME" as ID`).
        const id = path.split('.').join('__');
        const key = path.split('.').at(-1);
        expect(mermaid, `${name} state ${path}`).to.match(
          new RegExp(`(^|\\s)${id}(\\s|$)|"${key}" as `, 'm'),
        );
      }
      for (const event of events) {
        expect(mermaid, `${name} event ${event}`).to.match(new RegExp(`: ${event}(\\s|$)`, 'm'));
      }
      for (const delay of delays) expect(mermaid, `${name} delay ${delay}`).to.include(`: after ${delay}`);
      const arrows = mermaid.split('\n').filter((line) => line.includes(' --> ') && !line.includes('[*]'));
      expect(arrows.length, `${name} arrows`).to.equal(transitionCount);
    }
  });

  it('draws initial and final states, guards, transition actions, internal transitions and root transitions', () => {
    const election = renderMermaid(machines.election);
    expect(election).to.include('  [*] --> INIT\n');
    expect(election).to.include('  CLOSED --> [*]\n');
    expect(election).to.include('    BALLOT__CANVASS --> BALLOT__NOMINATE : always [canNominate]\n');
    expect(election).to.include(
      '    BALLOT__CANVASS --> BALLOT__CANVASS : always [statusIntervalDue] / noteStatusSent, broadcastCanvass (internal)\n',
    );
    expect(election).to.include(
      '  LEADER_PATH --> BALLOT__CANVASS : STEP_DOWN / recordTime, recordPosition\n',
    );
    expect(election).to.include('  any_state --> CLOSED : CLOSE / recordTime, leave\n');
    const trading = renderMermaid(machines['trading-phase']);
    expect(trading).to.include(
      '  HALTED --> OPENING_AUCTION : after HALT_DURATION [haltedByCircuitBreaker]\n',
    );
    expect(trading).to.include('  OPENING_AUCTION --> CONTINUOUS : after AUCTION_DURATION / uncross\n');
  });

  it('draws nested and parallel states, arrows across composite states, numeric delays, eventless and combined guards', () => {
    const machine = createMachine({
      id: 'sample',
      initial: 'OUTER',
      on: { RESET: '.OUTER' },
      states: {
        OUTER: {
          initial: 'FIRST',
          on: { LEAVE: 'BOTH' },
          states: {
            FIRST: { after: { 500: 'SECOND' }, on: { JUMP: '#sample.BOTH' } },
            SECOND: { always: { guard: and(['ready', not('busy')]), target: 'DONE' } },
            DONE: { type: 'final' },
          },
        },
        BOTH: {
          type: 'parallel',
          states: {
            LEFT: { initial: 'L1', states: { L1: {} } },
            RIGHT: { initial: 'R1', states: { R1: {} } },
          },
        },
      },
    });
    expect(renderMermaid(machine)).to.equal(
      [
        'stateDiagram-v2',
        '  [*] --> OUTER',
        '  state OUTER {',
        '    [*] --> OUTER__FIRST',
        '    state "FIRST" as OUTER__FIRST',
        '    state "SECOND" as OUTER__SECOND',
        '    state "DONE" as OUTER__DONE',
        '    OUTER__FIRST --> OUTER__SECOND : after 500 ms',
        '    OUTER__SECOND --> OUTER__DONE : always [and(ready, not(busy))]',
        '    OUTER__DONE --> [*]',
        '  }',
        '  state BOTH {',
        '    state "LEFT" as BOTH__LEFT {',
        '      [*] --> BOTH__LEFT__L1',
        '      state "L1" as BOTH__LEFT__L1',
        '    }',
        '    --',
        '    state "RIGHT" as BOTH__RIGHT {',
        '      [*] --> BOTH__RIGHT__R1',
        '      state "R1" as BOTH__RIGHT__R1',
        '    }',
        '  }',
        '  OUTER --> BOTH : LEAVE',
        '  OUTER__FIRST --> BOTH : JUMP',
        '  state "any state" as any_state',
        '  any_state --> OUTER : RESET',
        '',
      ].join('\n'),
    );
  });

  it('gives states whose names Mermaid would misread (keywords, dashes, quotes) a safe id and keeps the name', () => {
    const machine = createMachine({
      id: 'odd',
      initial: 'note',
      states: {
        note: { on: { GO: 'default-state' } },
        'default-state': { on: { 'GO:ON;': 'say "hi"' } },
        'say "hi"': { type: 'final' },
      },
    });
    expect(renderMermaid(machine)).to.equal(
      [
        'stateDiagram-v2',
        '  [*] --> S_note',
        '  state "note" as S_note',
        '  state "default-state" as S_default_state',
        `  state "say 'hi'" as say__hi_`,
        '  S_note --> S_default_state : GO',
        '  S_default_state --> say__hi_ : GO ON',
        '  say__hi_ --> [*]',
        '',
      ].join('\n'),
    );
  });

  it('each page has a title, the diagram and one table row per state with its note', () => {
    for (const name of machineNames()) {
      const page = renderDiagramPage(name);
      expect(page.startsWith(`# ${machineInfo[name].title} statechart\n`), name).to.equal(true);
      expect(page, name).to.include(`\`\`\`mermaid\n${renderMermaid(machines[name])}\`\`\``);
      for (const [state, note] of Object.entries(machineInfo[name].states)) {
        expect(page, `${name} row ${state}`).to.match(
          new RegExp(`^\\| \`${state}\`.*\\| ${literal(note)} \\|$`, 'm'),
        );
      }
    }
  });

  it('the committed pages in docs/diagrams are up to date with the machines', () => {
    expect(
      staleDiagrams(defaultDiagramsDir),
      'stale pages; regenerate with: node --import tsx runtime/diagrams.ts',
    ).to.deep.equal([]);
  });

  it('staleDiagrams notices a missing, edited or left-over page, and writeDiagrams repairs the first two', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-diagrams-'));
    try {
      expect(staleDiagrams(dir)).to.have.length(machineNames().length);
      const written = writeDiagrams(dir);
      expect(written.map((p) => basename(p))).to.deep.equal(machineNames().map((n) => `${n}.md`));
      expect(staleDiagrams(dir)).to.deep.equal([]);
      const electionPage = join(dir, 'election.md');
      writeFileSync(electionPage, readFileSync(electionPage, 'utf8').replace('LEADER', 'LEAD'));
      writeFileSync(join(dir, 'retired-machine.md'), '# gone\n');
      expect(staleDiagrams(dir)).to.deep.equal([electionPage, join(dir, 'retired-machine.md')]);
      writeDiagrams(dir);
      expect(staleDiagrams(dir)).to.deep.equal([join(dir, 'retired-machine.md')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A string as a literal inside a RegExp. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
