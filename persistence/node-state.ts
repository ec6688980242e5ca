// A member's durable Raft state: the current term, the highest term it has proposed as a candidate,
// and its vote. The consensus module must await save() before acting on a new term or vote: a member
// that forgets a vote after a crash could vote twice in one term and elect two leaders.
//
// save() never throws: a state it cannot accept (a term that is not an integer from 0 to MAX_TERM, a
// term going back, a second vote in one term) is refused with a rejected promise (INVALID_ARGUMENT) and
// nothing is written. A term is refused at MAX_SAFE_INTEGER already: the next election could not add 1.

import type { Database, RootDatabase } from 'lmdb';
import { durableBatch } from './durable.ts';
import { StorageError } from './errors.ts';
import { decodeChecked, encodeChecked } from './record-codec.ts';
import { isSafeNonNegative, termProblem } from './values.ts';

export interface NodeState {
  /** The latest term this member has seen. */
  readonly currentTerm: number;
  /** The highest term this member has proposed itself in (Aeron's candidateTermId); 0 if never. */
  readonly candidateTermId: number;
  /** The member voted for in `currentTerm`, or null. */
  readonly votedFor: number | null;
}

export const INITIAL_NODE_STATE: NodeState = Object.freeze({
  currentTerm: 0,
  candidateTermId: 0,
  votedFor: null,
});

const STATE_KEY = 'node-state';

export class NodeStateStore {
  /** The latest state accepted by save() (durable or about to be), used to validate the next save. */
  private latest: NodeState | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly env: RootDatabase,
    private readonly db: Database<Buffer, string>,
  ) {
    try {
      this.latest = this.load();
    } catch {
      // Damaged: the start-up scan reports it, load() and save() refuse until the member is rebuilt.
      this.latest = undefined;
    }
  }

  /** The durable state (INITIAL_NODE_STATE for a new member). Throws CORRUPT_RECORD if damaged. */
  load(): NodeState {
    const raw = this.db.get(STATE_KEY);
    if (raw === undefined) return INITIAL_NODE_STATE;
    const { value, problem } = decodeChecked<NodeState>(raw);
    const reason = problem ?? describeInvalid(value);
    if (reason !== undefined) {
      throw new StorageError(
        'CORRUPT_RECORD',
        `the node state record (term and vote) is damaged: ${reason}; this member cannot know whom it voted for — ` +
          'rebuild it (wipe the directory and rejoin) rather than guess',
        { dir: this.dir },
      );
    }
    return {
      currentTerm: value!.currentTerm,
      candidateTermId: value!.candidateTermId,
      votedFor: value!.votedFor,
    };
  }

  /**
   * Store the state durably; resolves once flushed. Refuses (a rejected promise, INVALID_ARGUMENT) a term
   * or candidate term that is not an integer from 0 to MAX_TERM or that goes backwards, a vote that is
   * not a member id, and a second, different vote in the same term.
   */
  async save(state: NodeState): Promise<void> {
    const reason = describeInvalid(state);
    if (reason !== undefined) {
      throw new StorageError('INVALID_ARGUMENT', `nodeState.save: ${reason}`, { dir: this.dir });
    }
    const previous = this.latest ?? this.load();
    if (state.currentTerm < previous.currentTerm) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `nodeState.save: currentTerm ${state.currentTerm} is lower than the stored ${previous.currentTerm}; terms never go back`,
        { dir: this.dir },
      );
    }
    if (state.candidateTermId < previous.candidateTermId) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `nodeState.save: candidateTermId ${state.candidateTermId} is lower than the stored ${previous.candidateTermId}`,
        { dir: this.dir },
      );
    }
    if (
      state.currentTerm === previous.currentTerm &&
      previous.votedFor !== null &&
      state.votedFor !== previous.votedFor
    ) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `nodeState.save: this member already voted for ${previous.votedFor} in term ${state.currentTerm}; ` +
          `changing the vote to ${String(state.votedFor)} would allow two leaders in one term`,
        { dir: this.dir },
      );
    }
    const record = encodeChecked({
      currentTerm: state.currentTerm,
      candidateTermId: state.candidateTermId,
      votedFor: state.votedFor,
    });
    this.latest = state;
    // Saves are written in call order; each resolves when its own write is durable.
    const write = this.chain.then(() =>
      durableBatch(this.env, this.dir, 'saving the node state', () => {
        this.db.put(STATE_KEY, record);
      }),
    );
    this.chain = write.catch(() => {
      // A failed save leaves the durable state as it was; later saves validate against that.
      this.latest = undefined;
    });
    return write;
  }
}

const describeInvalid = (state: NodeState | undefined): string | undefined => {
  if (state === null || typeof state !== 'object') return 'the state must be an object';
  const term = termProblem('currentTerm', state.currentTerm);
  if (term !== undefined) return term;
  const candidate = termProblem('candidateTermId', state.candidateTermId);
  if (candidate !== undefined) return candidate;
  if (state.votedFor !== null && !isSafeNonNegative(state.votedFor)) {
    return `votedFor ${String(state.votedFor)} must be a member id (an integer >= 0) or null`;
  }
  return undefined;
};
