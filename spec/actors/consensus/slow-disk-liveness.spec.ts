// Issue 10: a leader stepped down although both followers were alive, because a follower acknowledges
// new entries only once they are flushed, and under load its flushes took seconds — the leader's quorum
// check then saw no answer for longer than the heartbeat timeout. A follower must answer at least once
// per heartbeat interval while entries stream in, with the position it has flushed so far (never more).

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import {
  type ConsensusEffect,
  DEFAULT_TIMEOUTS,
  EMPTY_PERSISTED_STATE,
} from '../../../actors/consensus/types.ts';
import { append, entry } from './drive.ts';

const responses = (effects: ConsensusEffect[]) =>
  effects.flatMap((e) => (e.type === 'SEND' && e.message.type === 'APPEND_RESPONSE' ? [e.message] : []));

describe('consensus: a follower whose disk stalls still tells the leader it is alive', () => {
  it('answers a stream of appends at least once per heartbeat interval, claiming only what it flushed', () => {
    const interval = DEFAULT_TIMEOUTS.heartbeatIntervalMs;
    const follower = new ConsensusNode(
      { memberId: 2, members: [1, 2, 3], randomSeed: 3 },
      EMPTY_PERSISTED_STATE,
    );
    follower.handle({ type: 'TICK', now: 0 });
    const answeredAt: number[] = [];
    let lastIndex = 0;
    // The leader sends a batch every 10 ms for two seconds; the follower's disk completes nothing.
    for (let now = 10; now <= 2000; now += 10) {
      follower.handle({ type: 'TICK', now });
      const effects = follower.handle({
        type: 'PEER_MESSAGE',
        from: 1,
        message: append(1, lastIndex, lastIndex === 0 ? 0 : 1, [entry(lastIndex + 1, 1)], 0),
      });
      lastIndex++;
      // The small node-state record (term, vote) is written at once; the log's flushes never complete.
      for (const e of [...effects]) {
        if (e.type === 'SAVE_NODE_STATE')
          effects.push(...follower.handle({ type: 'NODE_STATE_SAVED', seq: e.seq }));
      }
      for (const response of responses(effects)) {
        expect(response.success).to.equal(true);
        expect(response.matchIndex, 'nothing was flushed, so nothing is claimed').to.equal(0);
        answeredAt.push(now);
      }
    }
    expect(answeredAt.length).to.be.greaterThan(0);
    // Silences: before the first answer, between answers, and after the last one until the end.
    const gaps = [...answeredAt.slice(1), 2000].map((t, i) => t - answeredAt[i]);
    expect(Math.max(answeredAt[0], ...gaps), 'longest silence towards the leader').to.be.at.most(
      interval + 10,
    );
    // And the answers are rate-limited: not one per append.
    expect(answeredAt.length).to.be.at.most(Math.ceil(2000 / interval) + 1);
  });
});
