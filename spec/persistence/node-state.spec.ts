import { expect } from 'chai';
import {
  INITIAL_NODE_STATE,
  type MemberStore,
  openMemberStore,
  StorageError,
} from '../../persistence/index.ts';
import { cleanup, tempDir } from './helpers.ts';

describe('persistence: node state', () => {
  let dir: string;
  let store: MemberStore;

  beforeEach(async () => {
    dir = tempDir('node');
    store = await openMemberStore(dir);
  });
  afterEach(async () => {
    await store.close();
    cleanup(dir);
  });

  it('starts at term 0 with no vote, and keeps a saved term and vote across a reopen', async () => {
    expect(store.nodeState.load()).to.deep.equal(INITIAL_NODE_STATE);
    await store.nodeState.save({ currentTerm: 3, candidateTermId: 4, votedFor: 2 });
    await store.close();
    store = await openMemberStore(dir);
    expect(store.nodeState.load()).to.deep.equal({ currentTerm: 3, candidateTermId: 4, votedFor: 2 });
  });

  it('refuses a term going backwards and a second vote in the same term', async () => {
    await store.nodeState.save({ currentTerm: 5, candidateTermId: 5, votedFor: 1 });
    const refuse = (state: Parameters<typeof store.nodeState.save>[0], pattern: RegExp) =>
      expect(() => store.nodeState.save(state))
        .to.throw(StorageError)
        .that.satisfies((e: StorageError) => e.code === 'INVALID_ARGUMENT' && pattern.test(e.message));
    refuse({ currentTerm: 4, candidateTermId: 5, votedFor: null }, /terms never go back/);
    refuse({ currentTerm: 5, candidateTermId: 5, votedFor: 2 }, /already voted for 1 in term 5/);
    refuse({ currentTerm: 5, candidateTermId: 4, votedFor: 1 }, /candidateTermId 4 is lower/);
    refuse({ currentTerm: 6, candidateTermId: 6, votedFor: 1.5 }, /votedFor 1.5 must be a member id/);
    // A new term may carry a new vote; saves made back to back land in order.
    const saves = [
      store.nodeState.save({ currentTerm: 6, candidateTermId: 6, votedFor: null }),
      store.nodeState.save({ currentTerm: 6, candidateTermId: 6, votedFor: 3 }),
    ];
    await Promise.all(saves);
    expect(store.nodeState.load()).to.deep.equal({ currentTerm: 6, candidateTermId: 6, votedFor: 3 });
  });
});
