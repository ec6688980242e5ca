// Rebalancing by the registry on real shards, with gateways that answer every order (reports sent in
// order, some held back): a round that finds the parties it would move still in flight plans again once
// they settle, and moves in flight never fill a gateway past its capacity. Both were seen by
// `chorus bench gateways`: loads that never evened out, and a gateway holding 151 parties of 150.

import { expect } from 'chai';
import type { RegistryLog as Log } from './registry-log.ts';
import { RegistryLog } from './registry-log.ts';

const OPERATOR = 99;
const CAPACITY = 10;
const THRESHOLD = 0.1;
const RULES = {
  filters: [{ kind: 'capacity' }],
  scores: [{ kind: 'least-loaded', weight: 1 }],
  rebalance: { movesPerRound: 100, pauseMs: 200, imbalanceThreshold: THRESHOLD, settlingMs: 0 },
};
const GATEWAYS = { g1: 11, g2: 12, g3: 13 } as const;
type Name = keyof typeof GATEWAYS;

interface Report {
  readonly name: Name;
  readonly party: string;
  readonly epoch: number;
  readonly status: 'OPENED' | 'CLOSED';
}

/** The registry and three gateways that report each order they get (OPEN: OPENED, CLOSE: CLOSED). */
class Fleet {
  readonly log: Log = new RegistryLog(1);
  readonly reports: Report[] = [];
  private routed = 0;

  constructor(parties: number) {
    const list = Array.from({ length: parties }, (_, i) => ({
      id: `p${String(i).padStart(2, '0')}`,
      endpoint: 'x',
    }));
    this.log.send(OPERATOR, { type: 'SET_PARTIES', parties: list });
    this.log.send(OPERATOR, { type: 'APPLY_RULES', rules: RULES });
  }

  register(name: Name): void {
    this.log.send(GATEWAYS[name], { type: 'REGISTER', name, capacity: CAPACITY });
    this.route();
  }

  /** The orders pushed since the last look become reports, in order. */
  private route(): void {
    const fresh = this.log.notifications().slice(this.routed);
    this.routed += fresh.length;
    for (const { sessionId, message } of fresh) {
      const name = (Object.keys(GATEWAYS) as Name[]).find((n) => GATEWAYS[n] === sessionId) as Name;
      const status = message.type === 'OPEN' ? 'OPENED' : 'CLOSED';
      this.reports.push({ name, party: message.party, epoch: message.epoch, status });
    }
  }

  /** Send the pending reports the filter lets through (and those the registry's answers cause). */
  deliver(which: (report: Report) => boolean = () => true, check = () => {}): void {
    for (let at = 0; at < this.reports.length; ) {
      if (!which(this.reports[at])) {
        at++;
        continue;
      }
      const [report] = this.reports.splice(at, 1);
      this.log.send(GATEWAYS[report.name], { type: 'REPORT', ...report });
      this.route();
      check();
    }
  }

  /** Cluster time passes (the registry's rounds fall due). */
  advance(ms: number): void {
    this.log.advance(ms);
    this.route();
  }

  /** Per gateway: parties it holds or is offered, and MOVING parties on their way to it. */
  loads(): Record<Name, { owned: number; incoming: number }> {
    const loads = {
      g1: { owned: 0, incoming: 0 },
      g2: { owned: 0, incoming: 0 },
      g3: { owned: 0, incoming: 0 },
    };
    for (const { assignment } of this.log.registry.registry.parties) {
      if (assignment.owner !== null) loads[assignment.owner as Name].owned++;
      if (assignment.target !== null) loads[assignment.target as Name].incoming++;
    }
    return loads;
  }

  imbalance(): number {
    const owned = Object.values(this.loads()).map((l) => l.owned / CAPACITY);
    return Math.max(...owned) - Math.min(...owned);
  }

  everyPartyOpen(): boolean {
    return this.log.registry.registry.parties.every((p) => p.state === 'OPEN');
  }
}

describe('gateway registry: rebalancing with parties in flight', () => {
  it('a round that finds the busiest gateways’ parties still OFFERED rebalances once they open', () => {
    const fleet = new Fleet(2 * CAPACITY);
    fleet.register('g1');
    fleet.register('g2');
    // g3 registers before g1 and g2 opened anything: its own entry's planning can move nothing.
    fleet.register('g3');
    expect(fleet.loads().g3.owned + fleet.loads().g3.incoming).to.equal(0);
    for (let round = 0; round < 10; round++) {
      fleet.deliver();
      fleet.advance(RULES.rebalance.pauseMs);
    }
    expect(fleet.everyPartyOpen(), 'every party OPEN').to.equal(true);
    expect(fleet.loads().g3.owned, 'g3 took parties').to.be.at.least(6);
    expect(fleet.imbalance()).to.be.at.most(THRESHOLD);
  });

  it('moves towards a gateway wait for their closes without filling it past its capacity, and the fleet still evens out', () => {
    const fleet = new Fleet(2 * CAPACITY);
    fleet.register('g1');
    fleet.deliver();
    fleet.register('g2');
    fleet.deliver();
    const withinCapacity = () => {
      for (const [name, { owned, incoming }] of Object.entries(fleet.loads())) {
        expect(owned + incoming, `${name} holds or awaits at most its capacity`).to.be.at.most(CAPACITY);
      }
    };
    fleet.register('g3'); // both others full and OPEN: this entry's planning moves parties to g3
    withinCapacity();
    // The old owners are slow to confirm their closes: several rounds pass meanwhile.
    for (let round = 0; round < 4; round++) {
      fleet.deliver((r) => r.status === 'OPENED', withinCapacity);
      fleet.advance(RULES.rebalance.pauseMs);
      withinCapacity();
    }
    for (let round = 0; round < 10; round++) {
      fleet.deliver(undefined, withinCapacity);
      fleet.advance(RULES.rebalance.pauseMs);
      withinCapacity();
    }
    expect(fleet.everyPartyOpen(), 'every party OPEN').to.equal(true);
    expect(fleet.imbalance()).to.be.at.most(THRESHOLD);
  });
});
