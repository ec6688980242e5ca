import { expect } from 'chai';
import { initialTransition, transition } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';
import { TRADING_PHASES, type TradingPhase, tradingPhaseMachine } from '../../machines/trading-phase.ts';
import { AFTER_AUCTION, AFTER_HALT, ALL_PHASE_EVENTS } from '../support/trading-phase-events.ts';

/**
 * The specification, written independently of the machine: from (phase, halt reason) and event to
 * the next phase. Pairs not listed must leave the phase unchanged.
 */
const SPEC: Record<string, Record<string, TradingPhase>> = {
  PRE_OPEN: { OPEN_AUCTION: 'OPENING_AUCTION', CLOSE: 'CLOSED' },
  OPENING_AUCTION: { UNCROSS: 'CONTINUOUS', [AFTER_AUCTION]: 'CONTINUOUS', CLOSE: 'CLOSED' },
  CONTINUOUS: { CIRCUIT_BREAKER_TRIPPED: 'HALTED', HALT: 'HALTED', CLOSE: 'CLOSED' },
  'HALTED/CIRCUIT_BREAKER': { RESUME: 'OPENING_AUCTION', [AFTER_HALT]: 'OPENING_AUCTION', CLOSE: 'CLOSED' },
  'HALTED/MANUAL': { RESUME: 'OPENING_AUCTION', CLOSE: 'CLOSED' },
  CLOSED: { REOPEN: 'PRE_OPEN' },
};

const specKey = (phase: TradingPhase, haltReason: string | null): string =>
  phase === 'HALTED' ? `HALTED/${haltReason}` : phase;

describe('trading-phase machine (model-based)', () => {
  const adjacency = getAdjacencyMap(tradingPhaseMachine, { events: ALL_PHASE_EVENTS });
  const vertices = Object.values(adjacency);

  it('reaches every phase, and both kinds of halt, from PRE_OPEN', () => {
    const reached = new Set(
      vertices.map((v) => specKey(v.state.value as TradingPhase, v.state.context.haltReason)),
    );
    expect([...reached].sort()).to.deep.equal(Object.keys(SPEC).sort());
    expect(new Set(vertices.map((v) => v.state.value))).to.have.keys(...TRADING_PHASES);
  });

  it('takes exactly the specified transition for every (state, event) pair', () => {
    let checked = 0;
    for (const vertex of vertices) {
      const from = vertex.state.value as TradingPhase;
      const expected = SPEC[specKey(from, vertex.state.context.haltReason)];
      for (const event of ALL_PHASE_EVENTS) {
        const [next] = transition(tradingPhaseMachine, vertex.state, event);
        expect(next.value, `${from} --${event.type}-->`).to.equal(expected[event.type] ?? from);
        expect(vertex.state.can(event), `can(${event.type}) in ${from}`).to.equal(event.type in expected);
        checked++;
      }
    }
    expect(checked).to.equal(vertices.length * ALL_PHASE_EVENTS.length);
  });

  it('every shortest path replays to its target through pure transitions', () => {
    const paths = getShortestPaths(tradingPhaseMachine, { events: ALL_PHASE_EVENTS });
    expect(paths.length).to.equal(vertices.length);
    for (const path of paths) {
      let [snapshot] = initialTransition(tradingPhaseMachine, {});
      for (const step of path.steps.slice(1))
        [snapshot] = transition(tradingPhaseMachine, snapshot, step.event);
      expect(snapshot.value).to.equal(path.state.value);
      expect(snapshot.context).to.deep.equal(path.state.context);
    }
  });

  it('runs uncross exactly when an auction ends, by command or by its timer', () => {
    for (const vertex of vertices) {
      for (const event of ALL_PHASE_EVENTS) {
        const [, actions] = transition(tradingPhaseMachine, vertex.state, event);
        const uncrosses = actions.filter((a) => a.type === 'uncross').length;
        const auctionEnds =
          vertex.state.value === 'OPENING_AUCTION' &&
          (event.type === 'UNCROSS' || (event.type as string) === AFTER_AUCTION);
        expect(uncrosses, `${String(vertex.state.value)} --${event.type}-->`).to.equal(auctionEnds ? 1 : 0);
      }
    }
  });

  it('schedules its timers with the configured durations and cancels them on leaving', () => {
    let [s] = initialTransition(tradingPhaseMachine, { auctionMs: 1234, haltMs: 5678 });
    let actions: { type: string; params?: unknown }[];
    [s, actions] = transition(tradingPhaseMachine, s, { type: 'OPEN_AUCTION' });
    expect(actions.map((a) => [a.type, (a.params as { delay?: number }).delay])).to.deep.equal([
      ['xstate.raise', 1234],
    ]);
    [s, actions] = transition(tradingPhaseMachine, s, { type: 'CLOSE' });
    expect(actions.map((a) => a.type)).to.deep.equal(['xstate.cancel']);
    [s] = transition(tradingPhaseMachine, s, { type: 'REOPEN' });
    [s] = transition(tradingPhaseMachine, s, { type: 'OPEN_AUCTION' });
    [s] = transition(tradingPhaseMachine, s, { type: 'UNCROSS' });
    [s, actions] = transition(tradingPhaseMachine, s, { type: 'CIRCUIT_BREAKER_TRIPPED' });
    expect(
      actions.filter((a) => a.type === 'xstate.raise').map((a) => (a.params as { delay: number }).delay),
    ).to.deep.equal([5678]);
    expect(s.context.haltReason).to.equal('CIRCUIT_BREAKER');
  });
});
