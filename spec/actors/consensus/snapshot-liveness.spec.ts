// A follower the leader brings up with a snapshot keeps hearing from the leader while the install runs.
// Three pure nodes on a virtual clock: member 1 holds the best log (a snapshot at 10, entries to 12),
// member 3 a shorter copy, member 2 nothing, so the leader must send member 2 its snapshot. Messages
// take 1 ms, node-state saves and appends complete at once, and member 2's install completes only
// after longer than the heartbeat timeout (a big snapshot on a slow disk). The leader must not go quiet
// towards member 2 meanwhile: it keeps heartbeating, so member 2 never loses its leader, and once the
// install is durable the entries after the snapshot follow at once.

import { expect } from 'chai';
import { ConsensusNode } from '../../../actors/consensus/node.ts';
import {
  type ConsensusEffect,
  type ConsensusInput,
  DEFAULT_TIMEOUTS,
  EMPTY_PERSISTED_STATE,
  type PeerMessage,
  type PersistedState,
} from '../../../actors/consensus/types.ts';
import { entries } from '../../persistence/helpers.ts';
import { run } from './drive.ts';

const MEMBERS = [1, 2, 3];
const { heartbeatIntervalMs, heartbeatTimeoutMs } = DEFAULT_TIMEOUTS;
/** Member 2's install takes longer than a follower waits for its leader. */
const INSTALL_MS = heartbeatTimeoutMs + 4 * heartbeatIntervalMs;
const DELAY_MS = 1;

const withSnapshot = (lastIndex: number): PersistedState => ({
  currentTerm: 1,
  candidateTermId: 1,
  votedFor: null,
  snapshot: { index: 10, term: 1, data: new Uint8Array([10]) },
  entries: entries(11, lastIndex, 1),
});

class Trio {
  readonly nodes = new Map<number, ConsensusNode>();
  /** Every effect each member produced, with the time it did. */
  readonly log: { at: number; member: number; effect: ConsensusEffect }[] = [];
  private wire: { at: number; from: number; to: number; message: PeerMessage }[] = [];
  private installs: { at: number; index: number }[] = [];
  now = 0;

  constructor() {
    const persisted: Record<number, PersistedState> = {
      1: withSnapshot(12),
      2: EMPTY_PERSISTED_STATE,
      3: withSnapshot(11),
    };
    for (const id of MEMBERS)
      this.nodes.set(
        id,
        new ConsensusNode({ memberId: id, members: MEMBERS, randomSeed: id }, persisted[id]),
      );
  }

  node(id: number): ConsensusNode {
    return this.nodes.get(id) as ConsensusNode;
  }

  input(id: number, input: ConsensusInput): void {
    for (const effect of run(this.node(id), input)) {
      this.log.push({ at: this.now, member: id, effect });
      if (effect.type === 'INSTALL_SNAPSHOT')
        this.installs.push({ at: this.now + INSTALL_MS, index: effect.snapshot.index });
      if (effect.type === 'SEND')
        this.wire.push({ at: this.now + DELAY_MS, from: id, to: effect.to, message: effect.message });
    }
  }

  runUntil(end: number): void {
    while (this.now < end) {
      this.now++;
      const due = this.wire.filter((m) => m.at <= this.now);
      this.wire = this.wire.filter((m) => m.at > this.now);
      for (const m of due) this.input(m.to, { type: 'PEER_MESSAGE', from: m.from, message: m.message });
      const installed = this.installs.filter((i) => i.at <= this.now);
      this.installs = this.installs.filter((i) => i.at > this.now);
      for (const i of installed) this.input(2, { type: 'SNAPSHOT_INSTALLED', index: i.index });
      for (const id of MEMBERS) this.input(id, { type: 'TICK', now: this.now });
    }
  }

  /** When the leader sent member 2 anything. */
  sendsToFollower(): { at: number; type: string }[] {
    return this.log.flatMap(({ at, member, effect }) =>
      member === 1 && effect.type === 'SEND' && effect.to === 2 ? [{ at, type: effect.message.type }] : [],
    );
  }
}

describe('consensus core: the leader keeps a follower that installs its snapshot', () => {
  it('heartbeats a follower through a snapshot install longer than the heartbeat timeout', () => {
    const trio = new Trio();
    trio.runUntil(2000);
    expect(trio.node(1).isReadyLeader, 'member 1 leads').to.equal(true);
    const sends = trio.sendsToFollower();
    const snapshotAt = sends.find((s) => s.type === 'INSTALL_SNAPSHOT')?.at;
    expect(snapshotAt, 'the leader sent member 2 its snapshot').to.be.a('number');
    // From the snapshot on, never a gap longer than a heartbeat interval (plus a tick) towards member 2.
    const after = sends.filter((s) => s.at >= (snapshotAt as number)).map((s) => s.at);
    let widest = 0;
    for (let i = 1; i < after.length; i++) widest = Math.max(widest, after[i] - after[i - 1]);
    expect(widest, `widest silence towards member 2 after its snapshot (ms)`).to.be.at.most(
      heartbeatIntervalMs + 1,
    );
    // Member 2 followed member 1 from its first contact on, without starting an election.
    const firstContact = trio.log.find(
      (l) =>
        l.member === 2 &&
        l.effect.type === 'ELECTION_STATE_CHANGE' &&
        l.effect.to === 'FOLLOWER_LOG_REPLICATION',
    )?.at as number;
    const canvasses = trio.log.filter(
      (l) =>
        l.member === 2 &&
        l.at > firstContact &&
        l.effect.type === 'ELECTION_STATE_CHANGE' &&
        l.effect.to === 'CANVASS',
    );
    expect(
      canvasses.map((c) => c.at),
      'member 2 lost its leader at',
    ).to.deep.equal([]);
    expect(trio.node(2).leaderId).to.equal(1);
    expect(trio.node(2).snapshotIndex).to.equal(10);
    expect(trio.node(2).commitIndex).to.equal(trio.node(1).commitIndex);
  });

  it('sends the entries after the snapshot as soon as the follower says the install is durable', () => {
    const trio = new Trio();
    trio.runUntil(2000);
    const installedAck = trio.log.find(
      (l) =>
        l.member === 2 &&
        l.effect.type === 'SEND' &&
        l.effect.message.type === 'APPEND_RESPONSE' &&
        l.effect.message.success &&
        l.effect.message.matchIndex >= 10,
    )?.at as number;
    expect(installedAck, 'member 2 acknowledged the install').to.be.a('number');
    const firstEntries = trio.log.find(
      (l) =>
        l.member === 1 &&
        l.at >= installedAck &&
        l.effect.type === 'SEND' &&
        l.effect.to === 2 &&
        l.effect.message.type === 'APPEND' &&
        l.effect.message.entries.length > 0,
    )?.at as number;
    expect(firstEntries - installedAck, 'ms from the install ack to the next entries').to.be.at.most(
      DELAY_MS,
    );
  });
});
