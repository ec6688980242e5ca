import { expect } from 'chai';
import { ROLES, type RoleEvent, roleMachine } from '../../machines/role.ts';
import { coverModel, edgeLines } from '../support/model-coverage.ts';

const EVENTS: RoleEvent[] = [{ type: 'BALLOT_STARTED' }, { type: 'ELECTED' }, { type: 'STEPPED_DOWN' }];

describe('role machine (model-based, xstate/graph)', () => {
  const coverage = coverModel(roleMachine, EVENTS);

  it('reaches every role', () => {
    expect(coverage.states).to.deep.equal([...ROLES].sort());
  });

  it('has exactly the Raft role transitions, each replayed along a shortest path', () => {
    expect(edgeLines(coverage.edges)).to.deep.equal(
      [
        'FOLLOWER --BALLOT_STARTED--> CANDIDATE',
        'CANDIDATE --ELECTED--> LEADER',
        'CANDIDATE --STEPPED_DOWN--> FOLLOWER',
        'CANDIDATE --BALLOT_STARTED--> CANDIDATE',
        'LEADER --STEPPED_DOWN--> FOLLOWER',
      ].sort(),
    );
    expect(coverage.replayFailures).to.deep.equal([]);
  });

  it('a follower cannot become leader without a ballot', () => {
    expect(coverage.edges.some((e) => e.from === 'FOLLOWER' && e.to === 'LEADER')).to.equal(false);
  });
});
