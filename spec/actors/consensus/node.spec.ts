// The pure consensus core, driven input by input: the safety rules one at a time.

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import {
  type ConsensusEffect,
  EMPTY_PERSISTED_STATE,
  type PeerMessage,
  type PersistedState,
} from '../../../actors/consensus/types.ts';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { entry, run } from './drive.ts';

const MEMBERS = [1, 2, 3];

const make = (id: number, persisted: PersistedState = EMPTY_PERSISTED_STATE, maxBytesInFlight?: number) =>
  new ConsensusNode(
    { memberId: id, members: MEMBERS, randomSeed: 42, maxBytesInFlight, maxBatchBytes: 256 },
    persisted,
  );

const sends = (effects: ConsensusEffect[], type?: PeerMessage['type']) =>
  effects.filter(
    (e): e is Extract<ConsensusEffect, { type: 'SEND' }> =>
      e.type === 'SEND' && (!type || e.message.type === type),
  );

/** An empty append from member 1 as leader of term 1: a heartbeat on an empty log. */
const HEARTBEAT_TERM_1: PeerMessage = {
  type: 'APPEND',
  term: 1,
  prevIndex: 0,
  prevTerm: 0,
  entries: [],
  commitIndex: 0,
  leaderLastIndex: 0,
};

/** An answer to `node`'s current canvass (or, with `reply` false, another member's own broadcast). */
const canvassAnswer = (node: ConsensusNode, logTerm = 0, logIndex = 0, reply = true): PeerMessage => ({
  type: 'CANVASS_POSITION',
  logTerm,
  logIndex,
  term: 0,
  reply,
  round: reply ? node.canvassRound : 1,
});

/** Make member 1 leader of term 1 (members 2 and 3 answer the canvass, 2 votes). */
const elect = (node: ConsensusNode): void => {
  run(node, { type: 'TICK', now: 0 });
  run(node, { type: 'PEER_MESSAGE', from: 2, message: canvassAnswer(node) });
  run(node, { type: 'PEER_MESSAGE', from: 3, message: canvassAnswer(node) });
  run(node, { type: 'TICK', now: 300 }); // past the nomination delay
  expect(node.electionState).to.equal('CANDIDATE_BALLOT');
  run(node, { type: 'PEER_MESSAGE', from: 2, message: { type: 'VOTE', term: node.term, granted: true } });
  expect(node.role).to.equal('LEADER');
  // Followers acknowledge the leader's log, then its NEW_LEADERSHIP_TERM entry.
  for (const from of [2, 3]) {
    run(node, { type: 'PEER_MESSAGE', from, message: ack(node.term, node.lastIndex) });
  }
  expect(node.isReadyLeader).to.equal(true);
};

const ack = (term: number, matchIndex: number): PeerMessage => ({
  type: 'APPEND_RESPONSE',
  term,
  success: true,
  matchIndex,
  rejectedIndex: 0,
  hintIndex: 0,
  hintTerm: 0,
});

describe('consensus core (pure)', () => {
  it('sends a vote only after the term and vote are durable', () => {
    const node = make(2);
    node.handle({ type: 'TICK', now: 0 });
    const request: PeerMessage = { type: 'REQUEST_VOTE', term: 1, logTerm: 0, logIndex: 0, transfer: false };
    const effects = node.handle({ type: 'PEER_MESSAGE', from: 1, message: request });
    const saves = effects.filter((e) => e.type === 'SAVE_NODE_STATE');
    expect(saves.at(-1)).to.include({ currentTerm: 1, votedFor: 1 });
    expect(sends(effects, 'VOTE'), 'no vote before NODE_STATE_SAVED').to.have.length(0);
    const last = saves.at(-1) as Extract<ConsensusEffect, { type: 'SAVE_NODE_STATE' }>;
    const released = node.handle({ type: 'NODE_STATE_SAVED', seq: last.seq });
    expect(sends(released, 'VOTE').map((s) => s.message)).to.deep.equal([
      { type: 'VOTE', term: 1, granted: true },
    ]);
    expect(node.electionState).to.equal('FOLLOWER_BALLOT');
  });

  it('with the voteBeforeDurable knob the vote leaves before the save (for the broken-rule test)', () => {
    const node = new ConsensusNode(
      { memberId: 2, members: MEMBERS, randomSeed: 1, faultyRules: { voteBeforeDurable: true } },
      EMPTY_PERSISTED_STATE,
    );
    node.handle({ type: 'TICK', now: 0 });
    const effects = node.handle({
      type: 'PEER_MESSAGE',
      from: 1,
      message: { type: 'REQUEST_VOTE', term: 1, logTerm: 0, logIndex: 0, transfer: false },
    });
    expect(sends(effects, 'VOTE')).to.have.length(1);
  });

  it('votes once per term', () => {
    const node = make(2);
    run(node, { type: 'TICK', now: 0 });
    run(node, {
      type: 'PEER_MESSAGE',
      from: 1,
      message: { type: 'REQUEST_VOTE', term: 1, logTerm: 0, logIndex: 0, transfer: false },
    });
    const second = run(node, {
      type: 'PEER_MESSAGE',
      from: 3,
      message: { type: 'REQUEST_VOTE', term: 1, logTerm: 0, logIndex: 0, transfer: false },
    });
    expect(sends(second, 'VOTE').map((s) => s.message)).to.deep.equal([
      { type: 'VOTE', term: 1, granted: false },
    ]);
    expect(node.vote).to.equal(1);
  });

  it('refuses a candidate whose log is less up to date (term, then position)', () => {
    const persisted: PersistedState = {
      ...EMPTY_PERSISTED_STATE,
      currentTerm: 2,
      entries: [entry(1, 1), entry(2, 2)],
    };
    for (const [logTerm, logIndex, granted] of [
      [1, 9, false],
      [2, 1, false],
      [2, 2, true],
      [3, 1, true],
    ] as const) {
      const node = make(2, persisted);
      run(node, { type: 'TICK', now: 0 });
      const effects = run(node, {
        type: 'PEER_MESSAGE',
        from: 1,
        message: { type: 'REQUEST_VOTE', term: 3, logTerm, logIndex, transfer: false },
      });
      expect(sends(effects, 'VOTE')[0]?.message, `log (${logTerm}, ${logIndex})`).to.deep.include({
        granted,
      });
    }
  });

  it('a live follower ignores canvass and ballots (P4), unless the leader asked for a transfer', () => {
    const node = make(2);
    run(node, { type: 'TICK', now: 0 });
    run(node, {
      type: 'PEER_MESSAGE',
      from: 1,
      message: HEARTBEAT_TERM_1,
    });
    expect(node.leaderId).to.equal(1);
    const canvass = run(node, {
      type: 'PEER_MESSAGE',
      from: 3,
      message: canvassAnswer(node, 0, 0, false),
    });
    expect(sends(canvass)).to.have.length(0);
    const ballot = run(node, {
      type: 'PEER_MESSAGE',
      from: 3,
      message: { type: 'REQUEST_VOTE', term: 2, logTerm: 0, logIndex: 0, transfer: false },
    });
    expect(sends(ballot)).to.have.length(0);
    expect(node.term).to.equal(1);
    const transfer = run(node, {
      type: 'PEER_MESSAGE',
      from: 3,
      message: { type: 'REQUEST_VOTE', term: 2, logTerm: 0, logIndex: 0, transfer: true },
    });
    expect(sends(transfer, 'VOTE')[0]?.message).to.deep.include({ granted: true, term: 2 });
  });

  it('commits only what a quorum flushed, and only from the leader’s term', () => {
    const node = make(1);
    elect(node);
    const commitBefore = node.commitIndex;
    const effects = node.handle({
      type: 'CLIENT_COMMAND',
      sessionId: 7,
      correlationId: 1,
      lowestAwaited: 0,
      payload: new Uint8Array([1]),
    });
    const append = effects.find((e) => e.type === 'APPEND') as Extract<ConsensusEffect, { type: 'APPEND' }>;
    const flushed = node.handle({ type: 'APPENDED', seq: append.seq });
    expect(
      flushed.some((e) => e.type === 'COMMIT'),
      'the leader alone is no quorum',
    ).to.equal(false);
    expect(node.commitIndex).to.equal(commitBefore);
    const acked = node.handle({ type: 'PEER_MESSAGE', from: 3, message: ack(node.term, node.lastIndex) });
    expect(acked.find((e) => e.type === 'COMMIT')).to.deep.equal({
      type: 'COMMIT',
      commitIndex: node.lastIndex,
    });
    expect(acked.find((e) => e.type === 'APPLY')).to.not.equal(undefined);
  });

  it('check-quorum: a leader that hears from no quorum within the heartbeat timeout steps down (P1)', () => {
    const node = make(1);
    elect(node);
    const now = 300 + node.timeouts.heartbeatTimeoutMs + 10;
    const effects = run(node, { type: 'TICK', now });
    expect(node.role).to.equal('FOLLOWER');
    expect(effects.some((e) => e.type === 'ROLE_CHANGE' && e.to === 'FOLLOWER')).to.equal(true);
    expect(node.electionState).to.equal('CANVASS');
  });

  it('a follower truncates a conflicting uncommitted tail and refuses to overwrite a committed entry', () => {
    const persisted: PersistedState = {
      ...EMPTY_PERSISTED_STATE,
      currentTerm: 2,
      entries: [entry(1, 1), entry(2, 1), entry(3, 2)],
    };
    const node = make(2, persisted);
    run(node, { type: 'TICK', now: 0 });
    const effects = run(node, {
      type: 'PEER_MESSAGE',
      from: 1,
      message: {
        type: 'APPEND',
        term: 3,
        prevIndex: 1,
        prevTerm: 1,
        entries: [entry(2, 3)],
        commitIndex: 1,
        leaderLastIndex: 2,
      },
    });
    expect(effects.find((e) => e.type === 'TRUNCATE')).to.deep.equal({ type: 'TRUNCATE', fromIndex: 2 });
    expect(node.lastIndex).to.equal(2);
    expect(node.termAt(2)).to.equal(3);
    expect(node.commitIndex).to.equal(1);
    expect(() =>
      node.handle({
        type: 'PEER_MESSAGE',
        from: 1,
        message: {
          type: 'APPEND',
          term: 3,
          prevIndex: 0,
          prevTerm: 0,
          entries: [entry(1, 3)],
          commitIndex: 1,
          leaderLastIndex: 1,
        },
      }),
    ).to.throw(/committed entry 1/);
  });

  it('N2: a follower that loses its connection to the leader canvasses at once; other peers going away change nothing', () => {
    const node = make(2);
    run(node, { type: 'TICK', now: 0 });
    const heartbeat = HEARTBEAT_TERM_1;
    run(node, { type: 'PEER_MESSAGE', from: 1, message: heartbeat });
    expect(node.leaderId).to.equal(1);
    expect(run(node, { type: 'PEER_DISCONNECTED', peer: 3 }), 'a follower peer left').to.deep.equal([]);
    expect(node.leaderId).to.equal(1);
    // Well within the heartbeat timeout: without the disconnect nothing would happen yet.
    const effects = run(node, { type: 'TICK', now: 10 }, { type: 'PEER_DISCONNECTED', peer: 1 });
    expect(node.leaderId).to.equal(null);
    expect(node.electionState).to.equal('CANVASS');
    expect(node.term, 'a canvass raises no term').to.equal(1);
    expect(sends(effects, 'CANVASS_POSITION').map((e) => e.to)).to.include(3);
    // The leader comes back (its connection was only reset): its heartbeat makes this member follow again.
    run(node, { type: 'PEER_MESSAGE', from: 1, message: heartbeat });
    expect(node.leaderId).to.equal(1);
  });

  it('C6: a follower refuses a client command with a redirect naming the leader', () => {
    const node = make(2);
    run(node, { type: 'TICK', now: 0 });
    run(node, {
      type: 'PEER_MESSAGE',
      from: 1,
      message: HEARTBEAT_TERM_1,
    });
    const effects = node.handle({
      type: 'CLIENT_COMMAND',
      sessionId: 1,
      correlationId: 9,
      lowestAwaited: 0,
      payload: new Uint8Array(),
    });
    expect(effects).to.deep.equal([
      { type: 'REJECT', sessionId: 1, correlationId: 9, reason: 'NOT_LEADER', leaderId: 1 },
    ]);
  });

  it('flow control: bytes sent and unacknowledged to a follower stay within the bound', () => {
    const bound = 1024;
    const node = make(1, EMPTY_PERSISTED_STATE, bound);
    elect(node);
    let inFlight = 0;
    for (let i = 0; i < 100; i++) {
      const effects = node.handle({
        type: 'CLIENT_COMMAND',
        sessionId: 1,
        correlationId: i,
        lowestAwaited: 0,
        payload: new Uint8Array(100),
      });
      for (const s of sends(effects, 'APPEND')) {
        if (s.to !== 2 || s.message.type !== 'APPEND') continue;
        for (const e of s.message.entries) inFlight += e.payload.length + 32;
      }
    }
    expect(inFlight).to.be.greaterThan(0);
    expect(inFlight).to.be.at.most(bound + 256);
  });

  it('leadership transfer: once the target has the whole log the leader tells it to ballot (O6)', () => {
    const node = make(1);
    elect(node);
    const effects = node.handle({ type: 'TRANSFER_LEADERSHIP', to: 3 });
    expect(sends(effects, 'TIMEOUT_NOW').map((s) => s.to)).to.deep.equal([3]);
    const rejected = node.handle({
      type: 'CLIENT_COMMAND',
      sessionId: 1,
      correlationId: 1,
      lowestAwaited: 0,
      payload: new Uint8Array(),
    });
    expect(rejected[0]).to.include({ type: 'REJECT', reason: 'TRANSFERRING' });
  });

  it('PROPOSE appends an entry of any kind on the leader and names its index; a follower refuses', () => {
    const node = make(1);
    elect(node);
    const effects = node.handle({
      type: 'PROPOSE',
      kind: EntryKind.SESSION_OPEN,
      payload: new Uint8Array([5]),
    });
    expect(effects.find((e) => e.type === 'PROPOSED')).to.deep.equal({
      type: 'PROPOSED',
      index: node.lastIndex,
      term: node.term,
      kind: EntryKind.SESSION_OPEN,
    });
    expect(node.entryAt(node.lastIndex)?.kind).to.equal(EntryKind.SESSION_OPEN);
    const follower = make(2);
    run(follower, { type: 'TICK', now: 0 });
    const refused = follower.handle({
      type: 'PROPOSE',
      kind: EntryKind.SESSION_OPEN,
      payload: new Uint8Array(),
    });
    expect(refused).to.deep.equal([
      { type: 'PROPOSAL_REJECTED', kind: EntryKind.SESSION_OPEN, reason: 'NOT_LEADER', leaderId: null },
    ]);
  });

  it('a single-member cluster elects itself and commits on its own flush', () => {
    const node = new ConsensusNode({ memberId: 1, members: [1], randomSeed: 3 }, EMPTY_PERSISTED_STATE);
    for (let now = 0; now <= 1000 && node.electionState !== 'CLOSED'; now += 10)
      run(node, { type: 'TICK', now });
    expect(node.role).to.equal('LEADER');
    expect(node.electionState).to.equal('CLOSED');
    const effects = run(node, {
      type: 'CLIENT_COMMAND',
      sessionId: 1,
      correlationId: 1,
      lowestAwaited: 0,
      payload: new Uint8Array([1]),
    });
    expect(effects.find((e) => e.type === 'COMMIT')).to.deep.equal({
      type: 'COMMIT',
      commitIndex: node.lastIndex,
    });
  });

  it('rejects a configuration that leaves this member out, naming the fix', () => {
    expect(
      () => new ConsensusNode({ memberId: 9, members: MEMBERS, randomSeed: 1 }, EMPTY_PERSISTED_STATE),
    ).to.throw(/memberId 9 is not in members/);
  });
});
