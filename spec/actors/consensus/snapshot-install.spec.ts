// Issue 10, section 3: a follower that installs the leader's snapshot while the leader keeps appending.
// The store carries out the install after (and the appends that follow it after the install), so the
// core must not count what it appended on top of the snapshot as flushed before SNAPSHOT_INSTALLED says
// the install is durable, nor count the snapshot itself as flushed before then. Driven input by input,
// completions delivered in the order a slow install produces.

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import type {
  ConsensusEffect,
  ConsensusInput,
  PeerMessage,
  PersistedState,
} from '../../../actors/consensus/types.ts';
import { entries } from '../../persistence/helpers.ts';
import { acks, append } from './drive.ts';

/** Member 2 of three, restarted from `persisted`. */
const follower = (persisted: PersistedState) =>
  new ConsensusNode({ memberId: 2, members: [1, 2, 3], randomSeed: 7 }, persisted);

/** Handle one input, answering node-state saves at once (appends and installs are answered by the test). */
const step = (node: ConsensusNode, input: ConsensusInput): ConsensusEffect[] => {
  const effects = node.handle(input);
  for (const effect of effects) {
    if (effect.type === 'SAVE_NODE_STATE')
      effects.push(...node.handle({ type: 'NODE_STATE_SAVED', seq: effect.seq }));
  }
  return effects;
};

const fromLeader = (node: ConsensusNode, message: PeerMessage) =>
  step(node, { type: 'PEER_MESSAGE', from: 1, message });

describe('consensus core: a snapshot install followed by appends', () => {
  it('counts entries appended after a snapshot as flushed only once the install is durable', () => {
    const node = follower({
      currentTerm: 1,
      candidateTermId: 0,
      votedFor: null,
      snapshot: null,
      entries: entries(1, 10, 1),
    });
    step(node, { type: 'TICK', now: 0 });
    fromLeader(node, append(1, 10, 1, [], 10));
    expect([node.commitIndex, node.flushedIndex]).to.deep.equal([10, 10]);

    // The leader purged past 10: it sends its snapshot at 100, then (the install being slow) the entries after it.
    const install = fromLeader(node, {
      type: 'INSTALL_SNAPSHOT',
      term: 1,
      index: 100,
      snapshotTerm: 1,
      data: new Uint8Array([1]),
    });
    expect(install.map((e) => e.type)).to.include('INSTALL_SNAPSHOT');
    const after = fromLeader(node, append(1, 100, 1, entries(101, 105, 1), 100));
    const appendEffect = after.find((e) => e.type === 'APPEND');
    expect(appendEffect, 'the entries after the snapshot are appended').to.not.equal(undefined);
    expect(acks(after), 'no acknowledgement while the install is in flight').to.deep.equal([]);

    // The append's completion arrives first: the install under it is not durable yet.
    const early = step(node, { type: 'APPENDED', seq: (appendEffect as { seq: number }).seq });
    expect(acks(early)).to.deep.equal([]);
    expect(node.flushedIndex, 'flushed before the install is durable').to.equal(10);

    const installed = step(node, { type: 'SNAPSHOT_INSTALLED', index: 100 });
    expect(node.flushedIndex).to.equal(105);
    expect(acks(installed), 'one acknowledgement of everything, once installed').to.deep.equal([105]);
  });

  it('a log that disagrees with the snapshot counts only its committed prefix as flushed until the install is durable', () => {
    const node = follower({
      currentTerm: 1,
      candidateTermId: 0,
      votedFor: null,
      snapshot: null,
      entries: entries(1, 150, 1),
    });
    step(node, { type: 'TICK', now: 0 });
    fromLeader(node, append(1, 150, 1, [], 10));
    expect([node.commitIndex, node.flushedIndex]).to.deep.equal([10, 150]);
    // A new leader whose log has term 2 at 100: everything past the committed 10 is discarded.
    const install = fromLeader(node, {
      type: 'INSTALL_SNAPSHOT',
      term: 2,
      index: 100,
      snapshotTerm: 2,
      data: new Uint8Array([1]),
    });
    expect(install.map((e) => e.type)).to.include('INSTALL_SNAPSHOT');
    expect(
      node.flushedIndex,
      'neither the snapshot nor the discarded tail counts before the install',
    ).to.equal(10);
    const installed = step(node, { type: 'SNAPSHOT_INSTALLED', index: 100 });
    expect(node.flushedIndex).to.equal(100);
    expect(acks(installed)).to.deep.equal([100]);
  });
});
