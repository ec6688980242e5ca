// Split votes after a leader crash (issue 10, section 4), in the simulator: the leader of 3 members is
// killed again and again on a slow network, and each failover is counted in ballots (a member entering
// CANDIDATE_BALLOT). With equal survivors nominating at uniformly random times, many failovers took
// two or more ballots on this network; staggered nomination should make a second ballot rare.

import { expect } from 'chai';
import { DEFAULT_TIMEOUTS } from '../../actors/consensus/types.ts';
import { runUntilLeader, startCluster } from './helpers.ts';

describe('simulator: ballots per failover', () => {
  it('N2: the leader crashes 60 times (20 seeds) on a network slow by up to 60 ms — almost every failover takes one ballot', () => {
    const { electionTimeoutMs, heartbeatTimeoutMs } = DEFAULT_TIMEOUTS;
    let kills = 0;
    let ballots = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { sim } = startCluster({ seed, network: { minDelayMs: 15, maxDelayMs: 60 } });
      for (let k = 0; k < 3; k++) {
        const old = sim.leader() as number;
        const before = sim.electionEvents.length;
        // Half the crashes reset the survivors' connections (a dead process), half go silent.
        sim.crash(old, { notifyPeers: k % 2 === 0 });
        const leader = runUntilLeader(sim, 10 * (heartbeatTimeoutMs + electionTimeoutMs), old);
        expect(leader, `seed ${seed}, kill ${k + 1}: a new leader`).to.not.equal(null);
        kills++;
        ballots += sim.electionEvents.slice(before).filter((e) => e.to === 'CANDIDATE_BALLOT').length;
        sim.restart(old);
        sim.runFor(3 * heartbeatTimeoutMs);
      }
    }
    expect(kills).to.equal(60);
    // The uniform draw took 116 ballots for these 60 failovers (one took 9).
    expect(ballots, 'ballots for 60 failovers').to.be.at.most(kills + kills / 10);
  });
});
