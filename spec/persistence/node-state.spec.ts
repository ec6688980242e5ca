import { expect } from 'chai';
import {
  INITIAL_NODE_STATE,
  MAX_TERM,
  type MemberStore,
  type NodeState,
  openMemberStore,
} from '../../persistence/index.ts';
import { cleanup, refuses, tempDir } from './helpers.ts';

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

  it('refuses a term going backwards and a second vote in the same term, with a rejected promise', async () => {
    await store.nodeState.save({ currentTerm: 5, candidateTermId: 5, votedFor: 1 });
    const refuse = (state: NodeState, pattern: RegExp) =>
      refuses(() => store.nodeState.save(state), 'INVALID_ARGUMENT', pattern);
    await refuse({ currentTerm: 4, candidateTermId: 5, votedFor: null }, /terms never go back/);
    await refuse({ currentTerm: 5, candidateTermId: 5, votedFor: 2 }, /already voted for 1 in term 5/);
    await refuse({ currentTerm: 5, candidateTermId: 4, votedFor: 1 }, /candidateTermId 4 is lower/);
    await refuse({ currentTerm: 6, candidateTermId: 6, votedFor: 1.5 }, /votedFor 1.5 must be a member id/);
    // A new term may carry a new vote; saves made back to back land in order.
    const saves = [
      store.nodeState.save({ currentTerm: 6, candidateTermId: 6, votedFor: null }),
      store.nodeState.save({ currentTerm: 6, candidateTermId: 6, votedFor: 3 }),
    ];
    await Promise.all(saves);
    expect(store.nodeState.load()).to.deep.equal({ currentTerm: 6, candidateTermId: 6, votedFor: 3 });
  });

  // Issue 11: a forged VOTE with term MAX_SAFE_INTEGER was saved, the next ballot computed 2^53, and the
  // store's synchronous throw crashed the member on every restart. Nothing like it is stored now.
  it('refuses a term or vote that is not a safe non-negative integer, or a term the next election could not increment', async () => {
    await store.nodeState.save({ currentTerm: 5, candidateTermId: 5, votedFor: 1 });
    const refuse = (state: NodeState, pattern: RegExp) =>
      refuses(() => store.nodeState.save(state), 'INVALID_ARGUMENT', pattern);
    await refuse(
      { currentTerm: Number.MAX_SAFE_INTEGER, candidateTermId: 5, votedFor: null },
      /currentTerm 9007199254740991 is above 9007199254740990: the next election's term would not be an exact integer/,
    );
    await refuse(
      { currentTerm: 6, candidateTermId: Number.MAX_SAFE_INTEGER, votedFor: null },
      /candidateTermId 9007199254740991 is above/,
    );
    await refuse(
      { currentTerm: 2 ** 53, candidateTermId: 5, votedFor: null },
      /currentTerm 9007199254740992 must be a safe integer >= 0/,
    );
    await refuse(
      { currentTerm: 11.5, candidateTermId: 5, votedFor: null },
      /currentTerm 11.5 must be a safe integer/,
    );
    await refuse(
      { currentTerm: -1, candidateTermId: 5, votedFor: null },
      /currentTerm -1 must be a safe integer >= 0/,
    );
    await refuse({ currentTerm: Number.NaN, candidateTermId: 5, votedFor: null }, /currentTerm NaN/);
    await refuse(
      { currentTerm: '7' as unknown as number, candidateTermId: 5, votedFor: null },
      /currentTerm 7 must be/,
    );
    await refuse({ currentTerm: 6, candidateTermId: 6, votedFor: -2 }, /votedFor -2 must be a member id/);
    await refuse(null as unknown as NodeState, /the state must be an object/);
    // Nothing refused was written; the highest term the store takes still can be.
    expect(store.nodeState.load()).to.deep.equal({ currentTerm: 5, candidateTermId: 5, votedFor: 1 });
    await store.nodeState.save({ currentTerm: MAX_TERM, candidateTermId: MAX_TERM, votedFor: null });
    await store.close();
    store = await openMemberStore(dir);
    expect(store.nodeState.load().currentTerm).to.equal(Number.MAX_SAFE_INTEGER - 1);
  });
});
