import { expect } from 'chai';
import { RedialSchedule } from '../../runtime/peer-network.ts';

// The peer network's redial schedule, step by step (no timers): each delay lies in the equal-jitter
// band [ceiling / 2, ceiling] with ceiling = min(max, base·2^attempt), so it grows, is capped, and is
// spread rather than fixed; members seeded with their own ids do not redial a peer in lockstep.
describe('peer network redial schedule', () => {
  const base = 50;
  const max = 1000;
  const delays = (schedule: RedialSchedule, peer: number, count: number): number[] =>
    Array.from({ length: count }, () => schedule.next(peer));

  it('grows exponentially within the jitter band and never exceeds the cap', () => {
    const schedule = new RedialSchedule(1, base, max);
    delays(schedule, 2, 40).forEach((delay, attempt) => {
      const ceiling = Math.min(max, base * 2 ** attempt);
      expect(delay, `attempt ${attempt}`).to.be.within(ceiling / 2, ceiling);
    });
  });

  it('is jittered: capped delays vary, and two members redialling the same peer are not in lockstep', () => {
    const one = delays(new RedialSchedule(1, base, max), 3, 30);
    const two = delays(new RedialSchedule(2, base, max), 3, 30);
    expect(new Set(one.slice(10)).size, 'delays at the cap').to.be.greaterThan(10);
    const same = one.filter((delay, attempt) => delay === two[attempt]).length;
    expect(same, 'attempts at which members 1 and 2 wait exactly as long').to.be.below(5);
  });

  it('counts failures per peer and starts again from the first step after a handshake', () => {
    const schedule = new RedialSchedule(1, base, max);
    delays(schedule, 2, 8);
    expect(schedule.next(3), 'another peer starts at the first step').to.be.within(base / 2, base);
    expect(schedule.next(2), 'peer 2 is at its ninth failure').to.be.within(max / 2, max);
    schedule.reset(2);
    expect(schedule.next(2), 'after reset').to.be.within(base / 2, base);
  });
});
