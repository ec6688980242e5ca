// Issue 10: an isolated leader steps down and canvasses alone. When the partition heals, the canvass
// positions the other two members broadcast seconds earlier (while they elected a new leader) are still
// waiting in its sockets and arrive at once. Counted as answers, they made it nominate itself in a new
// term and depose the leader elected meanwhile: a second outage of about 2 s right after every heal.
// Only an answer naming this member's current canvass round counts.

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import type { PeerMessage } from '../../../actors/consensus/types.ts';
import { EMPTY_PERSISTED_STATE } from '../../../actors/consensus/types.ts';
import { run } from './drive.ts';

const node = () =>
  new ConsensusNode({ memberId: 1, members: [1, 2, 3], randomSeed: 9 }, EMPTY_PERSISTED_STATE);

const position = (reply: boolean, round: number): PeerMessage => ({
  type: 'CANVASS_POSITION',
  logTerm: 0,
  logIndex: 0,
  term: 0,
  reply,
  round,
});

/** Tick every 10 ms up to `until`; returns the election states passed through. */
const tickUntil = (n: ConsensusNode, from: number, until: number): Set<string> => {
  const seen = new Set<string>();
  for (let now = from; now <= until; now += 10) {
    run(n, { type: 'TICK', now });
    seen.add(n.electionState);
  }
  return seen;
};

describe('consensus: only answers to the current canvass round count', () => {
  it("others' delayed broadcasts are answered but never make a member nominate itself", () => {
    const n = node();
    run(n, { type: 'TICK', now: 0 });
    expect(n.electionState).to.equal('CANVASS');
    // Both peers' broadcasts (behind this member's log), delivered late and many at once.
    for (let i = 0; i < 5; i++) {
      for (const from of [2, 3]) {
        const effects = run(n, { type: 'PEER_MESSAGE', from, message: position(false, 40 + i) });
        const answers = effects.flatMap((e) =>
          e.type === 'SEND' && e.message.type === 'CANVASS_POSITION' ? [e.message] : [],
        );
        expect(answers, 'each broadcast is answered, naming its round').to.deep.equal([
          { type: 'CANVASS_POSITION', logTerm: 0, logIndex: 0, term: 0, reply: true, round: 40 + i },
        ]);
      }
    }
    const seen = tickUntil(n, 10, 3000);
    expect([...seen]).to.not.include('NOMINATE');
    expect([...seen]).to.not.include('CANDIDATE_BALLOT');
  });

  it('an answer to an earlier round is not counted; an answer to the current one is', () => {
    const n = node();
    run(n, { type: 'TICK', now: 0 });
    const round = n.canvassRound;
    expect(round).to.be.greaterThan(0);
    run(n, { type: 'PEER_MESSAGE', from: 2, message: position(true, round - 1) });
    run(n, { type: 'PEER_MESSAGE', from: 3, message: position(true, round + 1) });
    expect([...tickUntil(n, 10, 3000)]).to.not.include('NOMINATE');
    // A fresh answer to the round it is in now: a quorum (itself and member 2), so it stands.
    run(n, { type: 'PEER_MESSAGE', from: 2, message: position(true, n.canvassRound) });
    expect([...tickUntil(n, 3010, 6000)]).to.include('CANDIDATE_BALLOT');
  });
});
