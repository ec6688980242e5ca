// The registry on real shards against honest gateways in random interleavings: orders reach each gateway
// in order but late, its reports reach the log in any order, gateways crash (their connections end with
// them, their session closes later), are cut off (they let go first, as their lease makes them, then
// their session closes), restart and register again; operators drain, change the party list and apply
// rules that make the planner move parties. After every step no party has two gateways holding it; once
// everything is delivered and every gateway runs again, every party is OPEN at one live gateway that has
// the capabilities it requires and holds it alone at the registry's epoch. Gateways also send old reports
// again late (a resync re-reports), which the registry must take as stale.

import { expect } from 'chai';
import fc from 'fast-check';
import type { GatewayOrder } from '../../../actors/services/gateway-registry/commands.ts';
import { checkProperty } from '../../support/property.ts';
import { RegistryLog } from './registry-log.ts';

const OPERATOR = 1;
const CAPABILITIES: Record<string, string[]> = { g0: ['x'], g1: ['x'], g2: [] };
const PARTIES = ['a', 'b', 'c', 'd', 'e'].map((id, i) => ({
  id,
  endpoint: `remote:${i}`,
  requires: i % 2 === 0 ? ['x'] : [],
}));
const RULES = { rebalance: { settlingMs: 0, pauseMs: 200, movesPerRound: 2, imbalanceThreshold: 0.1 } };

interface Gateway {
  readonly name: string;
  session: number;
  alive: boolean;
  /** Its session is still open in the cluster (closed later for a crashed or cut-off gateway). */
  sessionOpen: boolean;
  readonly holds: Map<string, number>;
  readonly givenUp: Map<string, number>;
  orders: GatewayOrder[];
  reports: Report[];
  /** Every report it sent in this session (one may be sent again late: a resync re-reports). */
  sent: Report[];
}

interface Report {
  readonly party: string;
  readonly epoch: number;
  readonly status: 'OPENED' | 'FAILED' | 'CLOSED';
}

class World {
  readonly log = new RegistryLog(2);
  readonly gateways: Gateway[];
  private nextSession = 100;
  private seen = 0;

  constructor() {
    this.log.send(OPERATOR, { type: 'APPLY_RULES', rules: RULES });
    this.gateways = Object.keys(CAPABILITIES).map((name) => ({
      name,
      session: 0,
      alive: false,
      sessionOpen: false,
      holds: new Map(),
      givenUp: new Map(),
      orders: [],
      reports: [],
      sent: [],
    }));
    for (const g of this.gateways) this.start(g);
    this.log.send(OPERATOR, { type: 'SET_PARTIES', parties: PARTIES });
    this.route();
  }

  /** New orders from the log, to the gateway whose session they went to. */
  route(): void {
    const fresh = this.log.notifications().slice(this.seen);
    this.seen += fresh.length;
    for (const n of fresh) {
      const g = this.gateways.find((x) => x.alive && x.session === n.sessionId);
      g?.orders.push(n.message);
    }
  }

  /** A new process registers from a new session (only once the old session has closed). */
  start(g: Gateway): void {
    if (g.alive || g.sessionOpen) return;
    Object.assign(g, {
      alive: true,
      session: this.nextSession++,
      sessionOpen: true,
      orders: [],
      reports: [],
    });
    g.givenUp.clear();
    this.log.send(g.session, {
      type: 'REGISTER',
      name: g.name,
      capabilities: CAPABILITIES[g.name],
      capacity: 3,
    });
    this.route();
  }

  /** The gateway acts on its next order. */
  deliverOrder(g: Gateway, fail: boolean): void {
    const order = g.orders.shift();
    if (!order || !g.alive) return;
    const { party, epoch } = order;
    if (order.type === 'OPEN') {
      if (epoch <= (g.givenUp.get(party) ?? 0) || (g.holds.get(party) ?? 0) >= epoch) return;
      if (fail) {
        g.holds.delete(party);
        g.givenUp.set(party, epoch);
        g.reports.push({ party, epoch, status: 'FAILED' });
        return;
      }
      for (const other of this.gateways) {
        if (other !== g && other.holds.has(party)) {
          throw new Error(
            `${g.name} opens ${party}@${epoch} while ${other.name} holds it @${other.holds.get(party)}`,
          );
        }
      }
      g.holds.set(party, epoch);
      g.reports.push({ party, epoch, status: 'OPENED' });
    } else {
      g.givenUp.set(party, Math.max(epoch, g.givenUp.get(party) ?? 0));
      if ((g.holds.get(party) ?? Number.POSITIVE_INFINITY) <= epoch) g.holds.delete(party);
      g.reports.push({ party, epoch, status: 'CLOSED' });
    }
  }

  /** One of its pending reports (any of them: a session's commands may reach the log out of order). */
  deliverReport(g: Gateway, pick: number): void {
    if (g.reports.length === 0 || !g.sessionOpen) return;
    const [report] = g.reports.splice(pick % g.reports.length, 1);
    g.sent.push(report);
    this.log.send(g.session, { type: 'REPORT', name: g.name, ...report });
    this.route();
  }

  /** A report it sent before is sent again, late (stale by now, as often as not). */
  repeatReport(g: Gateway, pick: number): void {
    if (g.sent.length === 0 || !g.sessionOpen) return;
    g.reports.push(g.sent[pick % g.sent.length]);
  }

  /** The process dies (or is cut off and lets go, as its lease makes it): nothing held any more. */
  stop(g: Gateway): void {
    Object.assign(g, { alive: false, orders: [], reports: [] });
    g.holds.clear();
  }

  /** Its session ends in the cluster (timeout): only for a gateway that stopped. */
  closeSession(g: Gateway): void {
    if (g.alive || !g.sessionOpen) return;
    g.sessionOpen = false;
    this.log.closeSession(g.session);
    this.route();
  }

  operate(command: Record<string, unknown>): void {
    this.log.send(OPERATOR, command);
    this.route();
  }

  advance(ms: number): void {
    this.log.advance(ms);
    this.route();
  }
}

type Action =
  | { kind: 'order'; g: number; fail: boolean }
  | { kind: 'report'; g: number; pick: number }
  | { kind: 'repeat'; g: number; pick: number }
  | { kind: 'stop'; g: number }
  | { kind: 'close-session'; g: number }
  | { kind: 'start'; g: number }
  | { kind: 'drain'; g: number }
  | { kind: 'parties'; keep: number }
  | { kind: 'advance'; ms: number };

const g = fc.nat(2);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant('order' as const), g, fail: fc.nat(9).map((n) => n === 0) }),
  },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('report' as const), g, pick: fc.nat(10) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('repeat' as const), g, pick: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stop' as const), g }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('close-session' as const), g }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('start' as const), g }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drain' as const), g }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('parties' as const), keep: fc.integer({ min: 3, max: 5 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 500 }) }),
  },
);

const run = (world: World, a: Action): void => {
  const gateway = 'g' in a ? world.gateways[a.g] : undefined;
  switch (a.kind) {
    case 'order':
      world.deliverOrder(gateway as Gateway, a.fail);
      return;
    case 'report':
      world.deliverReport(gateway as Gateway, a.pick);
      return;
    case 'repeat':
      world.repeatReport(gateway as Gateway, a.pick);
      return;
    case 'stop':
      world.stop(gateway as Gateway);
      return;
    case 'close-session':
      world.closeSession(gateway as Gateway);
      return;
    case 'start':
      world.start(gateway as Gateway);
      return;
    case 'drain':
      world.operate({ type: 'DRAIN', name: (gateway as Gateway).name });
      return;
    case 'parties':
      world.operate({ type: 'SET_PARTIES', parties: PARTIES.slice(0, a.keep) });
      return;
    case 'advance':
      world.advance(a.ms);
      return;
  }
};

/** Everything delivered, every gateway running and ACTIVE, time for the rounds: the fleet settles. */
const settle = (world: World): void => {
  for (const gateway of world.gateways) {
    const state = world.log.gateway(gateway.name)?.state;
    if (gateway.alive && state === 'DRAINING') world.stop(gateway);
    world.closeSession(gateway);
    world.start(gateway);
  }
  for (let round = 0; round < 40; round++) {
    for (const gateway of world.gateways) {
      while (gateway.orders.length > 0) world.deliverOrder(gateway, false);
      while (gateway.reports.length > 0) world.deliverReport(gateway, 0);
    }
    world.advance(300);
  }
};

const checkSettled = (world: World): void => {
  const registry = world.log.registry.registry;
  for (const party of registry.parties) {
    const where = `party ${party.id} (${party.state}, owner ${party.assignment.owner}@${party.assignment.epoch})`;
    expect(party.state, where).to.equal('OPEN');
    const owner = world.gateways.find((x) => x.name === party.assignment.owner);
    expect(owner?.alive, where).to.equal(true);
    expect(registry.gateways.find((x) => x.name === owner?.name)?.state, where).to.equal('ACTIVE');
    const requires = PARTIES.find((p) => p.id === party.id)?.requires ?? [];
    for (const c of requires) expect(CAPABILITIES[owner?.name ?? ''], where).to.include(c);
    const holders = world.gateways.filter((x) => x.holds.has(party.id));
    expect(
      holders.map((x) => `${x.name}@${x.holds.get(party.id)}`),
      where,
    ).to.deep.equal([`${owner?.name}@${party.assignment.epoch}`]);
  }
};

describe('gateway registry against honest gateways in random interleavings', () => {
  it('never lets two gateways hold one party, and settles every party at one live gateway that can serve it', function () {
    this.timeout(60_000);
    checkProperty(
      fc.property(fc.array(action, { maxLength: 120 }), (actions) => {
        const world = new World();
        for (const a of actions) run(world, a);
        settle(world);
        checkSettled(world);
      }),
      { numRuns: 150 },
    );
  });
});
