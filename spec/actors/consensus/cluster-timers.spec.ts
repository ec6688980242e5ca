import { expect } from 'chai';
import { timerEventPayload } from '../../../actors/actor-runtime/protocol.ts';
import { ShardSet } from '../../../actors/actor-runtime/shard-set.ts';
import { ClusterTimers, timerIdOfPayload } from '../../../actors/consensus/cluster-timers.ts';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { LeaderSim, LogBuilder, services } from '../actor-runtime/fixtures.ts';

const A = 'demo/counter/a';
const fired = (set: ShardSet, address = A): number =>
  (set.actorState(address) as { context: { fired: number } }).context.fired;

describe('ClusterTimers', () => {
  it('expires due timers in (deadline, id) order, once, and skips cancelled ones', () => {
    const timers = new ClusterTimers();
    timers.schedule('x#2', 200, timerEventPayload('x', 2));
    timers.schedule('x#1', 100, timerEventPayload('x', 1));
    timers.schedule('y#1', 100, timerEventPayload('y', 1));
    timers.schedule('z#1', 150, timerEventPayload('z', 1));
    timers.cancel('z#1');
    expect(timers.nextDeadline()).to.equal(100);
    expect(timers.expire(99)).to.deep.equal([]);
    expect(timers.expire(150).map((t) => t.timerId)).to.deep.equal(['x#1', 'y#1']);
    expect(timers.expire(150)).to.deep.equal([]); // in flight: not appended twice by the same leader
    expect(timers.size).to.equal(3);
    timers.onTimerEvent(timerEventPayload('x', 1));
    expect(timers.has('x#1')).to.equal(false);
    expect(timerIdOfPayload(timerEventPayload('y', 1))).to.equal('y#1');
  });

  it('a new leader re-appends in-flight timers; snapshots keep pending timers but not in-flight marks', () => {
    const timers = new ClusterTimers();
    timers.schedule('x#1', 100, timerEventPayload('x', 1));
    timers.schedule('x#2', 300, timerEventPayload('x', 2));
    expect(timers.expire(100)).to.have.length(1);
    const restored = ClusterTimers.restore(timers.snapshot());
    expect(restored.list().map((t) => t.timerId)).to.deep.equal(['x#1', 'x#2']);
    expect(restored.expire(100).map((t) => t.timerId)).to.deep.equal(['x#1']);
    timers.resetInFlight();
    expect(timers.expire(100).map((t) => t.timerId)).to.deep.equal(['x#1']);
    expect(restored.snapshot()).to.deep.equal(timers.snapshot());
  });
});

describe('actor timers (after delays as cluster timers)', () => {
  it('an `after` delay fires exactly once across a snapshot, a restart and a leader change (sim)', () => {
    const log = new LogBuilder();
    const leader = new LeaderSim(log, new ShardSet(2, { services }));
    log.command({ type: 'ARM', id: 'a' });
    leader.settle();
    expect(leader.timers.list().map((t) => [t.timerId, t.deadline])).to.deep.equal([
      [`${A}#1`, log.time + 1000],
    ]);

    // Snapshot while the timer is pending, then restart the member from that snapshot (timers too).
    const snapshot = leader.shards.snapshot();
    const timerSnapshot = leader.timers.snapshot();
    const restarted = new LeaderSim(
      log,
      ShardSet.restore(snapshot, 2, { services }),
      ClusterTimers.restore(timerSnapshot),
    );
    expect(restarted.timers.size).to.equal(1);

    // Time passes: the restarted member, as leader, appends the expiry.
    log.time += 999;
    expect(restarted.fireDue()).to.equal(0);
    log.time += 1;
    expect(restarted.fireDue()).to.equal(1);
    // Leader change before the TIMER_EVENT is applied: the next leader appends it again.
    const nextLeader = new LeaderSim(
      log,
      ShardSet.restore(snapshot, 3, { services }),
      ClusterTimers.restore(timerSnapshot),
    );
    expect(nextLeader.fireDue()).to.equal(1);
    expect(log.entries.filter((e) => e.kind === EntryKind.TIMER_EVENT)).to.have.length(2);

    nextLeader.settle();
    restarted.settle();
    leader.settle();
    for (const member of [leader, restarted, nextLeader]) {
      expect(fired(member.shards)).to.equal(1);
      expect(member.shards.actorState(A)).to.deep.include({ value: 'IDLE' });
      expect(member.timers.size).to.equal(0);
    }
  });

  it('leaving the state cancels the timer; re-arming schedules a new one that fires once', () => {
    const log = new LogBuilder();
    const sim = new LeaderSim(log, new ShardSet(1, { services }));
    log.command({ type: 'ARM', id: 'a' });
    log.command({ type: 'DISARM', id: 'a' });
    log.command({ type: 'ARM', id: 'a' });
    sim.settle();
    expect(sim.timers.list().map((t) => t.timerId)).to.deep.equal([`${A}#2`]);
    // A stale expiry of the cancelled timer (appended by a leader that missed the cancel) is ignored.
    log.raw(EntryKind.TIMER_EVENT, timerEventPayload(A, 1));
    sim.settle();
    expect(fired(sim.shards)).to.equal(0);
    sim.advance(1000);
    sim.settle();
    expect(fired(sim.shards)).to.equal(1);
  });
});
