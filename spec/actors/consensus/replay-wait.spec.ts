// The replay phases of an election wait for the services (awaitServicesReplay): a follower stays in
// FOLLOWER_REPLAY and a new leader in LEADER_REPLAY (taking no client command) until SERVICES_REPLAYED
// says the services applied what was committed when the phase began. Without the option, an APPLY
// handed to the shell counts as replayed. Member 2 of three, driven input by input; saves and appends
// complete at once.

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import {
  type ConsensusEffect,
  type ConsensusInput,
  EMPTY_PERSISTED_STATE,
  type PeerMessage,
} from '../../../actors/consensus/types.ts';
import { entries } from '../../persistence/helpers.ts';
import { run } from './drive.ts';

const member2 = (awaitServicesReplay: boolean) =>
  new ConsensusNode(
    { memberId: 2, members: [1, 2, 3], randomSeed: 3, awaitServicesReplay },
    EMPTY_PERSISTED_STATE,
  );

const from = (peer: number, message: PeerMessage): ConsensusInput => ({
  type: 'PEER_MESSAGE',
  from: peer,
  message,
});

/** Member 1, leader of term 1, sends entries 1..5 committed up to 5. */
const APPEND_1_TO_5: PeerMessage = {
  type: 'APPEND',
  term: 1,
  prevIndex: 0,
  prevTerm: 0,
  entries: entries(1, 5, 1),
  commitIndex: 5,
  leaderLastIndex: 5,
};

const applied = (effects: ConsensusEffect[]): number[] =>
  effects.flatMap((e) => (e.type === 'APPLY' ? e.entries.map((entry) => entry.index) : []));

describe('consensus core: the replay phases wait for the services', () => {
  it('a follower stays in FOLLOWER_REPLAY until the services replayed the committed log', () => {
    const node = member2(true);
    run(node, { type: 'TICK', now: 0 });
    const effects = run(node, from(1, APPEND_1_TO_5));
    expect(applied(effects)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(node.electionState).to.equal('FOLLOWER_REPLAY');
    run(node, { type: 'SERVICES_REPLAYED', index: 4 });
    expect(node.electionState, 'the services are one entry short').to.equal('FOLLOWER_REPLAY');
    run(node, { type: 'SERVICES_REPLAYED', index: 5 });
    expect(node.electionState).to.equal('CLOSED');
  });

  it('without awaitServicesReplay an APPLY handed over counts as replayed', () => {
    const node = member2(false);
    run(node, { type: 'TICK', now: 0 });
    run(node, from(1, APPEND_1_TO_5));
    expect(node.electionState).to.equal('CLOSED');
  });

  it('a new leader takes no command until the services replayed what it had committed', () => {
    const node = member2(true);
    run(node, { type: 'TICK', now: 0 });
    run(node, from(1, APPEND_1_TO_5), { type: 'SERVICES_REPLAYED', index: 5 });
    // Three more entries committed while the services lag behind.
    run(
      node,
      from(1, { ...APPEND_1_TO_5, prevIndex: 5, prevTerm: 1, entries: entries(6, 8, 1), commitIndex: 8 }),
    );
    expect(node.commitIndex).to.equal(8);
    // The leader dies; member 2 canvasses, stands and wins with member 3's vote.
    run(node, { type: 'PEER_DISCONNECTED', peer: 1 });
    run(
      node,
      from(3, {
        type: 'CANVASS_POSITION',
        logTerm: 1,
        logIndex: 8,
        term: 1,
        reply: true,
        round: node.canvassRound,
      }),
    );
    for (let now = 1; node.electionState !== 'CANDIDATE_BALLOT' && now < 2000; now += 10)
      run(node, { type: 'TICK', now });
    expect(node.electionState).to.equal('CANDIDATE_BALLOT');
    run(node, from(3, { type: 'VOTE', term: node.term, granted: true }));
    run(
      node,
      from(3, {
        type: 'APPEND_RESPONSE',
        term: node.term,
        success: true,
        matchIndex: 8,
        rejectedIndex: 0,
        hintIndex: 0,
        hintTerm: 0,
      }),
    );
    expect(node.electionState, 'waits for the services to reach 8').to.equal('LEADER_REPLAY');
    expect(node.isReadyLeader).to.equal(false);
    const refused = run(node, {
      type: 'CLIENT_COMMAND',
      sessionId: 1,
      correlationId: 1,
      lowestAwaited: 1,
      payload: new Uint8Array([1]),
    });
    expect(refused.find((e) => e.type === 'REJECT')).to.include({ reason: 'NOT_LEADER' });
    run(node, { type: 'SERVICES_REPLAYED', index: 8 });
    expect(node.electionState).to.equal('LEADER_READY');
    expect(node.isReadyLeader).to.equal(true);
  });
});
