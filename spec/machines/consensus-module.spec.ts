import { expect } from 'chai';
import { consensusModuleMachine, MODULE_STATES, type ModuleEvent } from '../../machines/consensus-module.ts';
import { coverModel, edgeLines } from '../support/model-coverage.ts';

const EVENTS: ModuleEvent[] = [
  { type: 'RECOVERED' },
  { type: 'SUSPEND' },
  { type: 'RESUME' },
  { type: 'SNAPSHOT_REQUESTED' },
  { type: 'SNAPSHOT_DONE' },
  { type: 'SHUTDOWN' },
  { type: 'TERMINATED' },
];

describe('consensus module machine (model-based, xstate/graph)', () => {
  const coverage = coverModel(consensusModuleMachine, EVENTS);

  it('reaches every module state', () => {
    expect(coverage.states).to.deep.equal([...MODULE_STATES].sort());
  });

  it('has exactly the declared transitions, each replayed along a shortest path', () => {
    expect(edgeLines(coverage.edges)).to.deep.equal(
      [
        'INIT --RECOVERED--> ACTIVE',
        'INIT --SHUTDOWN--> TERMINATING',
        'ACTIVE --SUSPEND--> SUSPENDED',
        'ACTIVE --SNAPSHOT_REQUESTED--> SNAPSHOT',
        'ACTIVE --SHUTDOWN--> TERMINATING',
        'SUSPENDED --RESUME--> ACTIVE',
        'SUSPENDED --SHUTDOWN--> TERMINATING',
        'SNAPSHOT --SNAPSHOT_DONE--> ACTIVE',
        'SNAPSHOT --SHUTDOWN--> TERMINATING',
        'TERMINATING --TERMINATED--> CLOSED',
      ].sort(),
    );
    expect(coverage.replayFailures).to.deep.equal([]);
  });
});
