// The `gateways` service on real shards: registration, assignment by capability, loss on session close,
// a move only after the old owner's close or loss, stale epochs refused, the party list and the rules
// changed by commands (versioned), and the state identical across a snapshot and a replay of the log.

import { expect } from 'chai';
import { pack, unpack } from '../../../actors/actor-runtime/protocol.ts';
import { ShardSet } from '../../../actors/actor-runtime/shard-set.ts';
import { type DutyList, isRefusal } from '../../../actors/services/gateway-registry/commands.ts';
import { Registry, type RegistrySnapshot } from '../../../actors/services/gateway-registry/registry.ts';
import { REGISTRY_ADDRESS, RegistryLog, SERVICES } from './registry-log.ts';

const OPERATOR = 99;
const party = (id: string, requires: string[] = [], labels: Record<string, string> = {}) => ({
  id,
  endpoint: `remote:${id}`,
  requires,
  labels,
});
const register = (
  log: RegistryLog,
  session: number,
  name: string,
  capabilities: string[] = [],
  capacity = 10,
) => log.send(session, { type: 'REGISTER', name, capabilities, capacity });
const report = (log: RegistryLog, session: number, name: string, p: string, epoch: number, status: string) =>
  log.send(session, { type: 'REPORT', name, party: p, epoch, status });

/** The orders each session got since `from` (a log index), as `session:TYPE party@epoch`. */
const ordersSince = (log: RegistryLog, from: number): string[] =>
  log
    .notifications(from)
    .map((n) => `${n.sessionId}:${n.message.type} ${n.message.party}@${n.message.epoch}`);

describe('gateway registry service (gateways)', () => {
  it('registers a gateway: admitted by the planning of its own entry and answered its duty list; a second session cannot take its name', () => {
    const log = new RegistryLog();
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('p')] });
    const at = log.log.index + 1;
    const answer = register(log, 11, 'g1', ['fix']) as DutyList;
    expect(answer.gateway).to.deep.equal({ name: 'g1', state: 'ACTIVE', session: 11 });
    expect(answer.epochs).to.deep.equal([{ party: 'p', epoch: 1, endpoint: 'remote:p', action: 'OPEN' }]);
    // Admitted without waiting for a cluster timer: the OPEN went out in the REGISTER's own entry.
    expect(ordersSince(log, at)).to.deep.equal(['11:OPEN p@1']);
    expect(log.notifications(at)[0].index).to.equal(at);
    const taken = register(log, 12, 'g1');
    expect(isRefusal(taken) && taken.refused).to.match(/registered from session 11, which is still open/);
    expect(isRefusal(register(log, 11, 'g2')), 'one gateway per session').to.equal(true);
    // The same session again is a resync: nothing changes.
    expect((register(log, 11, 'g1', ['fix']) as DutyList).gateway.state).to.equal('ACTIVE');
    log.closeSession(11);
    expect(log.gateway('g1')?.state).to.equal('LOST');
    const again = register(log, 12, 'g1') as DutyList;
    expect(again.gateway).to.deep.equal({ name: 'g1', state: 'ACTIVE', session: 12 });
    expect(
      again.epochs.map((d) => d.epoch),
      'p offered again under a new epoch',
    ).to.deep.equal([2]);
  });

  it('assigns every party to a gateway with the capabilities it requires, with OPEN pushed to that session under a new epoch', () => {
    const log = new RegistryLog();
    register(log, 11, 'plain');
    register(log, 12, 'fixer', ['fix']);
    const from = log.log.index + 1;
    log.send(OPERATOR, {
      type: 'SET_PARTIES',
      parties: [party('a', ['fix']), party('b', ['fix']), party('c')],
    });
    for (const id of ['a', 'b']) expect(log.party(id)?.assignment.owner, id).to.equal('fixer');
    const orders = log.notifications(from);
    expect(orders.map((n) => n.message.type)).to.deep.equal(['OPEN', 'OPEN', 'OPEN']);
    const epochs = orders.map((n) => n.message.epoch);
    expect(new Set(epochs).size, 'one epoch per assignment').to.equal(3);
    for (const n of orders) {
      const owner = log.party(n.message.party)?.assignment.owner;
      expect(n.sessionId, n.message.party).to.equal(owner === 'fixer' ? 12 : 11);
      expect(n.message).to.include({ endpoint: `remote:${n.message.party}` });
    }
    const opened = report(log, 12, 'fixer', 'a', log.party('a')?.assignment.epoch as number, 'OPENED');
    expect(opened).to.deep.include({ party: 'a', state: 'OPEN', owner: 'fixer' });
  });

  it('refuses a stale epoch, a report from another gateway and a report from another session, changing nothing', () => {
    const log = new RegistryLog();
    register(log, 11, 'g1');
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('a'), party('p')] });
    const epoch = log.party('p')?.assignment.epoch as number;
    expect(epoch, 'a took the first epoch').to.equal(2);
    const before = log.party('p');
    for (const [session, name, e] of [
      [11, 'g1', epoch + 1],
      [11, 'g1', epoch - 1],
      [12, 'g1', epoch],
    ] as const) {
      const answer = report(log, session, name, 'p', e, 'OPENED');
      expect(isRefusal(answer), `${session} ${name} @${e}`).to.equal(true);
    }
    register(log, 12, 'g2');
    expect(report(log, 12, 'g2', 'p', epoch, 'CLOSED'))
      .to.have.property('refused')
      .that.match(/stale report/);
    expect(log.party('p')).to.deep.equal(before);
  });

  it('loses a gateway when its session closes, and offers its parties elsewhere in the same entry', () => {
    const log = new RegistryLog();
    register(log, 11, 'g1', [], 10);
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: ['p1', 'p2', 'p3'].map((id) => party(id)) });
    for (const id of ['p1', 'p2', 'p3'])
      report(log, 11, 'g1', id, log.party(id)?.assignment.epoch as number, 'OPENED');
    register(log, 12, 'g2');
    const close = log.log.index + 1;
    log.closeSession(11);
    expect(log.gateway('g1')?.state).to.equal('LOST');
    const orders = log.notifications(close);
    expect(
      orders.every((n) => n.index === close && n.sessionId === 12 && n.message.type === 'OPEN'),
    ).to.equal(true);
    expect(orders.map((n) => n.message.party).sort()).to.deep.equal(['p1', 'p2', 'p3']);
    // The lost gateway's late report of its old epoch is refused.
    expect(isRefusal(report(log, 11, 'g1', 'p1', 1, 'CLOSED'))).to.equal(true);
  });

  it('moves a party only after its old owner confirmed the close (drain), or once the owner was lost', () => {
    const log = new RegistryLog();
    register(log, 11, 'g1');
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('p'), party('q')] });
    for (const id of ['p', 'q'])
      report(log, 11, 'g1', id, log.party(id)?.assignment.epoch as number, 'OPENED');
    register(log, 12, 'g2');
    const drain = log.log.index + 1;
    log.send(OPERATOR, { type: 'DRAIN', name: 'g1' });
    expect(ordersSince(log, drain)).to.deep.equal(['11:CLOSE p@1', '11:CLOSE q@2']);
    expect([log.party('p')?.state, log.party('p')?.assignment.target]).to.deep.equal(['MOVING', 'g2']);
    log.advance(10_000);
    expect(ordersSince(log, drain), 'nothing is opened at g2 while g1 may still hold p').to.have.length(2);
    const closed = log.log.index + 1;
    report(log, 11, 'g1', 'p', 1, 'CLOSED');
    expect(ordersSince(log, closed)).to.deep.equal(['12:OPEN p@3']);
    // q's owner never confirms; its loss lets q go to its target.
    const lost = log.log.index + 1;
    log.closeSession(11);
    expect(ordersSince(log, lost)).to.deep.equal(['12:OPEN q@4']);
  });

  it('takes the party list from SET_PARTIES: a removed party is closed first and forgotten once closed', () => {
    const log = new RegistryLog();
    register(log, 11, 'g1');
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('p'), party('q')] });
    report(log, 11, 'g1', 'p', 1, 'OPENED');
    const from = log.log.index + 1;
    const answer = log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('q'), party('r')] });
    expect(answer).to.deep.equal({ parties: 2, added: 1, removed: 1, changed: 0 });
    expect(ordersSince(log, from)).to.deep.equal(['11:CLOSE p@1', '11:OPEN r@3']);
    expect(log.party('p')?.state).to.equal('CLOSING');
    report(log, 11, 'g1', 'p', 1, 'CLOSED');
    expect(log.party('p')).to.equal(undefined);
    const twice = log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('x'), party('x')] });
    expect(twice)
      .to.have.property('refused')
      .that.match(/'x' is listed twice/);
  });

  it('applies rules through the log, versioned: ifVersion must name the rules in force, invalid rules name the field', () => {
    const log = new RegistryLog();
    expect(log.send(OPERATOR, { type: 'APPLY_RULES', rules: 'tieBreak: name\n' })).to.deep.equal({
      version: 1,
    });
    const stale = log.send(OPERATOR, { type: 'APPLY_RULES', rules: 'tieBreak: hash\n', ifVersion: 0 });
    expect(stale)
      .to.have.property('refused')
      .that.match(/version 1, not 0/);
    const bad = log.send(OPERATOR, {
      type: 'APPLY_RULES',
      rules: { scores: [{ kind: 'least-loaded', weight: -1 }] },
    });
    expect(bad)
      .to.have.property('refused')
      .that.match(/scores\[0\]\.weight/);
    expect(
      log.send(OPERATOR, { type: 'APPLY_RULES', rules: { tieBreak: 'hash' }, ifVersion: 1 }),
    ).to.deep.equal({
      version: 2,
    });
    expect(log.registry.rulesVersion).to.equal(2);
    expect(log.registry.rules.tieBreak).to.equal('hash');
  });

  it('offers a party whose OPEN failed again at the next SYNC of a gateway, without waiting for the retry timer', () => {
    const log = new RegistryLog();
    register(log, 11, 'g1');
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('p')] });
    expect(report(log, 11, 'g1', 'p', 1, 'FAILED')).to.deep.include({ state: 'UNASSIGNED' });
    const sync = log.log.index + 1;
    const duties = log.send(11, { type: 'SYNC', name: 'g1' }) as DutyList;
    expect(ordersSince(log, sync)).to.deep.equal(['11:OPEN p@2']);
    expect(duties.epochs).to.deep.equal([{ party: 'p', epoch: 2, endpoint: 'remote:p', action: 'OPEN' }]);
  });

  it('answers SYNC with the duty list, only to the session the gateway registered from', () => {
    const log = new RegistryLog();
    register(log, 11, 'g1');
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: [party('p')] });
    expect((log.send(11, { type: 'SYNC', name: 'g1' }) as DutyList).epochs).to.deep.equal([
      { party: 'p', epoch: 1, endpoint: 'remote:p', action: 'OPEN' },
    ]);
    expect(log.send(12, { type: 'SYNC', name: 'g1' })).to.have.property('refused');
  });

  it('G4: a rules change and the fleet it moved are the same after a snapshot and a replay of the log, on any shard count', () => {
    const log = new RegistryLog(2);
    register(log, 11, 'east', [], 4);
    log.send(OPERATOR, { type: 'SET_PARTIES', parties: ['a', 'b', 'c', 'd'].map((id) => party(id)) });
    for (const id of ['a', 'b', 'c', 'd'])
      report(log, 11, 'east', id, log.party(id)?.assignment.epoch as number, 'OPENED');
    const snapshot = log.leader.shards.snapshot();
    const snapshotIndex = log.log.index;
    const snapshotState = log.registry;
    register(log, 12, 'west', [], 4);
    log.send(OPERATOR, {
      type: 'APPLY_RULES',
      rules: { rebalance: { settlingMs: 0, pauseMs: 1000, movesPerRound: 1, imbalanceThreshold: 0 } },
    });
    log.advance(1500);
    for (const p of log.registry.registry.parties) {
      if (p.state === 'MOVING') report(log, 11, 'east', p.id, p.assignment.epoch, 'CLOSED');
    }
    log.advance(1500);
    const live = log.registry;
    expect(live.rulesVersion).to.equal(1);
    const moved = live.registry.parties.filter((p) => p.assignment.owner === 'west');
    expect(moved.length, 'the new rules moved parties to west').to.be.at.least(1);
    // From the snapshot onto 3 shards, and from nothing on one, replaying the log entry by entry: the
    // two agree after every entry, and end where the live shards are.
    const restored = ShardSet.restore(snapshot, 3, SERVICES);
    const fresh = new ShardSet(1, SERVICES);
    fresh.apply(log.log.entries.filter((e) => e.index <= snapshotIndex));
    expect(restored.actorState(REGISTRY_ADDRESS), 'at the snapshot').to.deep.equal(
      fresh.actorState(REGISTRY_ADDRESS),
    );
    for (const entry of log.log.entries.filter((e) => e.index > snapshotIndex)) {
      restored.apply([entry]);
      fresh.apply([entry]);
      expect(restored.actorState(REGISTRY_ADDRESS), `after entry ${entry.index}`).to.deep.equal(
        fresh.actorState(REGISTRY_ADDRESS),
      );
    }
    expect(restored.actorState(REGISTRY_ADDRESS)).to.deep.equal(live);
    // The actor itself, rebuilt from its msgpack'd snapshot, holds every field it had.
    for (const state of [live, snapshotState]) {
      expect(Registry.restore(unpack(pack(state)) as RegistrySnapshot).snapshot()).to.deep.equal(state);
    }
  });
});
