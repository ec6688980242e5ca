// A follower whose leader leads again in a later term (restarted, its unflushed tail lost): what the
// follower verified against the old term's log must not be acknowledged to the new term's leader.
// Found by the simulator's sweep (a stale match let the new leader commit an entry only it held).

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import type { PeerMessage } from '../../../actors/consensus/types.ts';
import { entries } from '../../persistence/helpers.ts';
import { acks, append, run } from './drive.ts';

const fromLeader = (node: ConsensusNode, message: PeerMessage) =>
  run(node, { type: 'PEER_MESSAGE', from: 1, message });

describe('consensus core: the same leader in a later term', () => {
  it('acknowledges only what it verified against the new term, not the old tail', () => {
    const node = new ConsensusNode(
      { memberId: 2, members: [1, 2, 3], randomSeed: 7 },
      { currentTerm: 1, candidateTermId: 0, votedFor: null, snapshot: null, entries: entries(1, 10, 1) },
    );
    run(node, { type: 'TICK', now: 0 });
    // Member 1 leads term 2 and sends 11-12; the follower flushes and acknowledges them.
    const first = fromLeader(node, append(2, 10, 1, entries(11, 12, 2), 10));
    expect(acks(first).at(-1)).to.equal(12);
    // Member 1 restarted without 12 and leads term 3: its heartbeat proves only the log up to 11.
    run(node, { type: 'TICK', now: 100 });
    const heartbeat = fromLeader(node, append(3, 11, 2, [], 10));
    expect(node.term).to.equal(3);
    expect(acks(heartbeat), 'no acknowledgement past what term 3 verified').to.not.be.empty;
    expect(Math.max(...acks(heartbeat))).to.equal(11);
  });
});
