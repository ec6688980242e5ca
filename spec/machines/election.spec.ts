// The election statechart, model-based: every state reached and every transition (guards included)
// taken along a shortest path with xstate/graph, checked against the table of Aeron's election.

import { expect } from 'chai';
import { initialTransition, transition } from 'xstate';
import { ELECTION_STATES, type ElectionEvent, electionMachine } from '../../machines/election.ts';
import { coverModel, edgeLines } from '../support/model-coverage.ts';

const canvass = (
  allAnswered: boolean,
  quorumAnswered: boolean,
  betterLogSeen: boolean,
  deadlinePassed: boolean,
) => ({ type: 'CANVASS_UPDATE', allAnswered, quorumAnswered, betterLogSeen, deadlinePassed }) as const;

const EVENTS: ElectionEvent[] = [
  { type: 'START' },
  { type: 'START_TRANSFER' },
  canvass(true, true, false, false),
  canvass(false, true, false, true),
  canvass(false, true, false, false),
  canvass(true, true, true, true),
  canvass(false, false, false, true),
  { type: 'STATUS_INTERVAL' },
  { type: 'CANVASS_EXPIRED' },
  { type: 'NOMINATION_DUE' },
  { type: 'VOTE_GRANTED_TO_OTHER' },
  { type: 'LEADER_DISCOVERED' },
  { type: 'BALLOT_WON' },
  { type: 'BALLOT_TIMEOUT' },
  { type: 'HIGHER_TERM_SEEN' },
  { type: 'QUORUM_REPLICATED' },
  { type: 'REPLAY_DONE', behind: true },
  { type: 'REPLAY_DONE', behind: false },
  { type: 'TERM_APPENDED' },
  { type: 'TERM_COMMITTED' },
  { type: 'STEP_DOWN' },
  { type: 'LOG_MATCHED' },
  { type: 'CATCHUP_REQUESTED' },
  { type: 'CATCHUP_DATA' },
  { type: 'CAUGHT_UP' },
  { type: 'LOG_INIT_DONE' },
  { type: 'LOG_JOINED' },
  { type: 'READY_SENT' },
  { type: 'LEADER_LOST' },
  { type: 'CLOSE' },
];

const label = (event: ElectionEvent): string => {
  if (event.type === 'CANVASS_UPDATE') {
    if (event.betterLogSeen) return 'CANVASS_UPDATE(better log seen)';
    if (event.allAnswered) return 'CANVASS_UPDATE(all answered)';
    if (event.quorumAnswered && event.deadlinePassed) return 'CANVASS_UPDATE(quorum, deadline passed)';
    if (event.quorumAnswered) return 'CANVASS_UPDATE(quorum, before deadline)';
    return 'CANVASS_UPDATE(no quorum)';
  }
  if (event.type === 'REPLAY_DONE') return `REPLAY_DONE(${event.behind ? 'behind' : 'up to date'})`;
  return event.type;
};

const EXPECTED = [
  'INIT --START--> CANVASS',
  'INIT --START_TRANSFER--> CANDIDATE_BALLOT',
  'CANVASS --CANVASS_UPDATE(all answered)--> NOMINATE',
  'CANVASS --CANVASS_UPDATE(quorum, deadline passed)--> NOMINATE',
  'CANVASS --STATUS_INTERVAL--> CANVASS',
  'CANVASS --CANVASS_EXPIRED--> CANVASS',
  'CANVASS --LEADER_DISCOVERED--> FOLLOWER_LOG_REPLICATION',
  'CANVASS --VOTE_GRANTED_TO_OTHER--> FOLLOWER_BALLOT',
  'NOMINATE --NOMINATION_DUE--> CANDIDATE_BALLOT',
  'NOMINATE --LEADER_DISCOVERED--> FOLLOWER_LOG_REPLICATION',
  'NOMINATE --VOTE_GRANTED_TO_OTHER--> FOLLOWER_BALLOT',
  'CANDIDATE_BALLOT --BALLOT_WON--> LEADER_LOG_REPLICATION',
  'CANDIDATE_BALLOT --BALLOT_TIMEOUT--> CANVASS',
  'CANDIDATE_BALLOT --HIGHER_TERM_SEEN--> CANVASS',
  'CANDIDATE_BALLOT --LEADER_DISCOVERED--> FOLLOWER_LOG_REPLICATION',
  'CANDIDATE_BALLOT --VOTE_GRANTED_TO_OTHER--> FOLLOWER_BALLOT',
  'FOLLOWER_BALLOT --LEADER_DISCOVERED--> FOLLOWER_LOG_REPLICATION',
  'FOLLOWER_BALLOT --BALLOT_TIMEOUT--> CANVASS',
  'FOLLOWER_BALLOT --VOTE_GRANTED_TO_OTHER--> FOLLOWER_BALLOT',
  'LEADER_LOG_REPLICATION --QUORUM_REPLICATED--> LEADER_REPLAY',
  'LEADER_LOG_REPLICATION --STEP_DOWN--> CANVASS',
  'LEADER_REPLAY --REPLAY_DONE(behind)--> LEADER_INIT',
  'LEADER_REPLAY --REPLAY_DONE(up to date)--> LEADER_INIT',
  'LEADER_REPLAY --STEP_DOWN--> CANVASS',
  'LEADER_INIT --TERM_APPENDED--> LEADER_READY',
  'LEADER_INIT --STEP_DOWN--> CANVASS',
  'LEADER_READY --TERM_COMMITTED--> CLOSED',
  'LEADER_READY --STEP_DOWN--> CANVASS',
  'FOLLOWER_LOG_REPLICATION --LOG_MATCHED--> FOLLOWER_REPLAY',
  'FOLLOWER_LOG_REPLICATION --LEADER_LOST--> CANVASS',
  'FOLLOWER_REPLAY --REPLAY_DONE(behind)--> FOLLOWER_CATCHUP_INIT',
  'FOLLOWER_REPLAY --REPLAY_DONE(up to date)--> FOLLOWER_LOG_INIT',
  'FOLLOWER_REPLAY --LEADER_LOST--> CANVASS',
  'FOLLOWER_CATCHUP_INIT --CATCHUP_REQUESTED--> FOLLOWER_CATCHUP_AWAIT',
  'FOLLOWER_CATCHUP_INIT --LEADER_LOST--> CANVASS',
  'FOLLOWER_CATCHUP_AWAIT --CATCHUP_DATA--> FOLLOWER_CATCHUP',
  'FOLLOWER_CATCHUP_AWAIT --LEADER_LOST--> CANVASS',
  'FOLLOWER_CATCHUP --CAUGHT_UP--> FOLLOWER_LOG_INIT',
  'FOLLOWER_CATCHUP --LEADER_LOST--> CANVASS',
  'FOLLOWER_LOG_INIT --LOG_INIT_DONE--> FOLLOWER_LOG_AWAIT',
  'FOLLOWER_LOG_INIT --LEADER_LOST--> CANVASS',
  'FOLLOWER_LOG_AWAIT --LOG_JOINED--> FOLLOWER_READY',
  'FOLLOWER_LOG_AWAIT --LEADER_LOST--> CANVASS',
  'FOLLOWER_READY --READY_SENT--> CLOSED',
  'FOLLOWER_READY --LEADER_LOST--> CANVASS',
  // Shutdown closes an election from any phase.
  ...ELECTION_STATES.filter((s) => s !== 'CLOSED').map((s) => `${s} --CLOSE--> CLOSED`),
];

describe('election machine (model-based, xstate/graph)', () => {
  const coverage = coverModel(electionMachine, EVENTS, label);

  it("reaches every one of Aeron's election states", () => {
    expect(coverage.states).to.deep.equal([...ELECTION_STATES].sort());
  });

  it('has exactly the declared transitions, each replayed along a shortest path', () => {
    expect(edgeLines(coverage.edges)).to.deep.equal([...EXPECTED].sort());
    expect(coverage.replayFailures).to.deep.equal([]);
  });

  it('CANVASS nominates only when no better log was seen and all answered, or a quorum after the deadline', () => {
    const [init] = initialTransition(electionMachine);
    const [inCanvass] = transition(electionMachine, init, { type: 'START' });
    const stateAfter = (event: ElectionEvent) => transition(electionMachine, inCanvass, event)[0].value;
    expect(stateAfter(canvass(true, true, false, false))).to.equal('NOMINATE');
    expect(stateAfter(canvass(false, true, false, true))).to.equal('NOMINATE');
    expect(stateAfter(canvass(false, true, false, false))).to.equal('CANVASS');
    expect(stateAfter(canvass(true, true, true, true))).to.equal('CANVASS');
    expect(stateAfter(canvass(false, false, false, true))).to.equal('CANVASS');
  });

  it('names the entry actions the consensus module runs (pure transition returns them unexecuted)', () => {
    const [init] = initialTransition(electionMachine);
    const [, actions] = transition(electionMachine, init, { type: 'START' });
    expect(actions.map((a) => a.type)).to.deep.equal(['beginCanvass', 'broadcastCanvass']);
    const [ballot, ballotActions] = transition(electionMachine, init, { type: 'START_TRANSFER' });
    expect(ballot.value).to.equal('CANDIDATE_BALLOT');
    expect(ballotActions.map((a) => a.type)).to.deep.equal(['startBallot']);
  });
});
