// What a gateway holds (gateway/duties.ts), against a reference written from the rules: an order older than
// one already seen for its party changes nothing; an order applied twice is applied once; a duty list
// leaves exactly its fresh OPEN duties wanted; an epoch the gateway ended (reported CLOSED or FAILED) is
// never wanted again, even when a later duty list names it; the lease running out drops everything. And the messages a
// gateway acts on are checked first (gateway/messages.ts).

import { expect } from 'chai';
import fc from 'fast-check';
import { Duties } from '../../gateway/duties.ts';
import { type Duty, type Order, parseDuties, parseOrder } from '../../gateway/messages.ts';
import { checkProperty } from '../support/property.ts';

type Step =
  | { kind: 'order'; order: Order }
  | { kind: 'sync'; duties: Duty[] }
  | { kind: 'drop' }
  | { kind: 'end'; party: string; epoch: number };

const party = fc.constantFrom('p1', 'p2', 'p3');
const epoch = fc.integer({ min: 0, max: 6 });
const endpointOf = (e: number) => `127.0.0.1:${7000 + e}`;
const order: fc.Arbitrary<Order> = fc.oneof(
  fc
    .record({ type: fc.constant('OPEN' as const), party, epoch })
    .map((o) => ({ ...o, endpoint: endpointOf(o.epoch) })),
  fc.record({ type: fc.constant('CLOSE' as const), party, epoch }),
);
const duty: fc.Arbitrary<Duty> = fc
  .record({ party, epoch, action: fc.constantFrom('OPEN' as const, 'CLOSE' as const) })
  .map((d) => ({ ...d, endpoint: endpointOf(d.epoch) }));
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: order.map((o) => ({ kind: 'order' as const, order: o })) },
  {
    weight: 2,
    arbitrary: fc.array(duty, { maxLength: 4 }).map((d) => ({ kind: 'sync' as const, duties: d })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'drop' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const), party, epoch }) },
);

/** The rules, written plainly: the wanted map, the highest epoch seen and the highest ended per party. */
const reference = (steps: readonly Step[]): Map<string, number> => {
  const wanted = new Map<string, number>();
  const seen = new Map<string, number>();
  const ended = new Map<string, number>();
  const fresh = (p: string, e: number) => {
    if ((seen.get(p) ?? -1) > e) return false;
    seen.set(p, e);
    return true;
  };
  const closeUpTo = (p: string, e: number) => {
    if ((wanted.get(p) ?? -1) <= e) wanted.delete(p);
  };
  const open = (p: string, e: number) => {
    if ((ended.get(p) ?? -1) < e) wanted.set(p, e);
  };
  for (const s of steps) {
    if (s.kind === 'drop') wanted.clear();
    else if (s.kind === 'end') {
      ended.set(s.party, Math.max(s.epoch, ended.get(s.party) ?? -1));
      closeUpTo(s.party, s.epoch);
    } else if (s.kind === 'order') {
      if (!fresh(s.order.party, s.order.epoch)) continue;
      if (s.order.type === 'OPEN') open(s.order.party, s.order.epoch);
      else closeUpTo(s.order.party, s.order.epoch);
    } else {
      const listed = new Set(s.duties.map((d) => d.party));
      for (const d of s.duties) {
        if (!fresh(d.party, d.epoch)) continue;
        if (d.action === 'OPEN') open(d.party, d.epoch);
        else closeUpTo(d.party, d.epoch);
      }
      for (const p of [...wanted.keys()]) if (!listed.has(p)) wanted.delete(p);
    }
  }
  return wanted;
};

const run = (steps: readonly Step[], twice = false): Duties => {
  const duties = new Duties();
  for (const s of steps) {
    const times = twice ? 2 : 1;
    for (let i = 0; i < times; i++) {
      if (s.kind === 'drop') duties.dropAll();
      else if (s.kind === 'end') duties.end(s.party, s.epoch);
      else if (s.kind === 'order') duties.apply(s.order);
      else duties.sync(s.duties);
    }
  }
  return duties;
};

const wantedEpochs = (duties: Duties) => new Map([...duties.want].map(([p, w]) => [p, w.epoch]));

describe('gateway duties (what a gateway holds)', () => {
  it('follows the reference for any orders, duty lists and lease drops; each step applied twice is the same as once', () => {
    checkProperty(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const expected = reference(steps);
        expect(wantedEpochs(run(steps))).to.deep.equal(expected);
        expect(wantedEpochs(run(steps, true)), 'every step twice').to.deep.equal(expected);
        for (const [p, w] of run(steps).want) expect(w.endpoint, p).to.equal(endpointOf(w.epoch));
      }),
      { numRuns: 500 },
    );
  });

  it('a stale order changes nothing; a CLOSE is always due a CLOSED report', () => {
    const duties = new Duties();
    duties.apply({ type: 'OPEN', party: 'p1', epoch: 4, endpoint: '127.0.0.1:7004' });
    expect(duties.apply({ type: 'OPEN', party: 'p1', epoch: 3, endpoint: '127.0.0.1:7003' })).to.equal(false);
    expect(duties.apply({ type: 'CLOSE', party: 'p1', epoch: 2 })).to.equal(false);
    expect(wantedEpochs(duties)).to.deep.equal(new Map([['p1', 4]]));
    duties.apply({ type: 'CLOSE', party: 'p2', epoch: 1 }); // never held: still answered
    duties.apply({ type: 'CLOSE', party: 'p1', epoch: 4 });
    expect(duties.takeClosed()).to.deep.equal([
      { party: 'p2', epoch: 1 },
      { party: 'p1', epoch: 4 },
    ]);
    expect(duties.want.size).to.equal(0);
  });

  it('never reopens an epoch it ended, even when a duty list answered before its report names it; it says so again', () => {
    const duties = new Duties();
    const endpoint = '127.0.0.1:7024';
    duties.sync([{ party: 'p1', epoch: 24, endpoint, action: 'OPEN' }]);
    expect(wantedEpochs(duties)).to.deep.equal(new Map([['p1', 24]]));
    duties.dropAll(); // the cluster connection was lost: every connection closed…
    duties.end('p1', 24); // …and reported CLOSED, so the registry gives p1 out again under a new epoch
    // A SYNC sent before the drop, answered after the session resumed, still lists the old assignment.
    const again = duties.sync([{ party: 'p1', epoch: 24, endpoint, action: 'OPEN' }]);
    expect(duties.want.size).to.equal(0);
    expect(again).to.deep.equal([{ party: 'p1', epoch: 24, endpoint, action: 'OPEN' }]);
    expect(duties.apply({ type: 'OPEN', party: 'p1', epoch: 24, endpoint })).to.equal(false);
    expect(duties.want.size).to.equal(0);
    // A new assignment to this gateway opens as usual.
    expect(duties.apply({ type: 'OPEN', party: 'p1', epoch: 25, endpoint })).to.equal(true);
    expect(wantedEpochs(duties)).to.deep.equal(new Map([['p1', 25]]));
  });

  it('refuses a pushed message or duty list that does not fit, naming the field', () => {
    expect(parseOrder({ type: 'OPEN', party: 'p1', epoch: 1, endpoint: '127.0.0.1:7001' }).ok).to.equal(true);
    const refused = (m: unknown) => {
      const r = parseOrder(m);
      expect(r.ok, JSON.stringify(m)).to.equal(false);
      return (r as { problem: string }).problem;
    };
    expect(refused({ type: 'OPEN', party: 'p1', epoch: 1 })).to.match(/endpoint/);
    expect(refused({ type: 'OPEN', party: 'p1', epoch: -1, endpoint: 'h:1' })).to.match(/epoch/);
    expect(refused({ type: 'OPEN', party: 'p1', epoch: 1, endpoint: 'no-port' })).to.match(/endpoint/);
    expect(refused({ type: 'CLOSE', party: '', epoch: 1 })).to.match(/party/);
    expect(refused({ type: 'DROP_TABLES' })).to.match(/type/);
    expect(refused('OPEN p1')).to.be.a('string');
    expect(parseDuties({ epochs: [{ party: 'p1', epoch: 2, endpoint: 'h:1', action: 'OPEN' }] }).ok).to.equal(
      true,
    );
    const noEndpoint = parseDuties([{ party: 'p1', epoch: 2, action: 'OPEN' }]);
    expect(noEndpoint).to.deep.equal({ ok: false, problem: 'party p1: an OPEN duty needs an endpoint' });
    expect(parseDuties({ epochs: 'all' }).ok).to.equal(false);
  });
});
