// Attacks on the peer port of real member processes: forged HELLO without the secret, and forged
// messages from a connection that does hold it (VOTE with a huge, fractional or negative term, APPEND with
// a gap, an unknown kind or a fake entry, garbage snapshot data). Each time the cluster stays up, writable
// and unchanged: same leader, same terms, no forged entry in any member's log on disk.

import { expect } from 'chai';
import { pack } from 'msgpackr';
import { encodeKvCommand } from '../../actors/services/kv.ts';
import { formatMembersString } from '../../runtime/config.ts';
import { maxCommandBytes } from '../../runtime/wire/client-frames.ts';
import { PeerKind, toWire } from '../../runtime/wire/peer-frames.ts';
import { newNonce } from '../../runtime/wire/peer-handshake.ts';
import { dial } from '../../runtime/wire/transport.ts';
import { connectClient, expectAllPresent, kv, TestCluster, writeOnce } from '../runtime/cluster/support.ts';
import { eventually } from '../support/ports.ts';
import { clusterSecrets, expectNoForgedEntries, expectUndisturbed, reports, warnings } from './cluster.ts';
import { dialAsPeer, sendConsensus } from './peers.ts';

const MARKER = 'FORGED-DEPOSIT';

/** A forged entry: a session message whose payload carries the marker. */
const forgedAppend = (term: number, prevIndex: number, overrides: Record<string, unknown> = {}) => ({
  ...toWire({
    type: 'APPEND',
    term,
    prevIndex,
    prevTerm: term,
    entries: [
      { index: prevIndex + 1, term, timestamp: Date.now(), kind: 3, payload: Buffer.from(MARKER.padEnd(40)) },
    ],
    commitIndex: prevIndex + 1,
    leaderLastIndex: prevIndex + 1,
  }),
  ...overrides,
});

describe('security: forged peer traffic against real members', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let leader: number;

  before(async () => {
    cluster = await TestCluster.start({ members: 3 });
    leader = await cluster.whole();
  });
  after(() => cluster.close());

  /** The followers, lowest id first: the lower may dial the higher (as members do). */
  const followers = () => [0, 1, 2].filter((id) => id !== leader);

  it('forged HELLO without the secret (claiming each member, then VOTE and APPEND at once): refused, logged, the cluster unchanged', async () => {
    const before = await reports(cluster);
    const config = cluster.cluster.config;
    const members = formatMembersString(config.members);
    let refusedAll = 0;
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        config.members.flatMap((target) =>
          config.members
            .filter((claimed) => claimed.id < target.id)
            .map(async (claimed) => {
              const connection = await dial(target.host, target.peerPort, {
                maxFrameBytes: 1 << 20,
                name: 'target',
              });
              const closed = new Promise<string>((resolve) => connection.once('close', resolve));
              connection.send(PeerKind.HELLO, { memberId: claimed.id, members, nonce: newNonce() });
              connection.send(PeerKind.PROOF, { proof: new Uint8Array(32) });
              sendConsensus(connection, { type: 'VOTE', term: Number.MAX_SAFE_INTEGER, granted: true });
              sendConsensus(
                connection,
                forgedAppend(before[target.id].term + 1, before[target.id].lastIndex),
              );
              const reason = await closed;
              if (reason.includes(`member ${claimed.id} did not prove it holds the cluster secret`))
                refusedAll++;
            }),
        ),
      );
    }
    expect(refusedAll, 'forged handshakes refused for want of a proof').to.equal(20 * 3);
    await cluster.cluster.until(
      () =>
        warnings(cluster, 2, 'peer connection refused: refused by member 2: member 0 did not prove').length >
        0,
      'a warning naming the refusal',
    );
    await expectUndisturbed(cluster, before);
  });

  it('forged VOTE (term MAX_SAFE_INTEGER, 11.5, -1) from a connection holding the secret: closed with the reason, terms unchanged', async () => {
    const before = await reports(cluster);
    const [low, high] = followers();
    for (const term of [Number.MAX_SAFE_INTEGER, 11.5, -1]) {
      const { connection, closed } = await dialAsPeer(
        cluster.cluster.config.members[high],
        cluster.cluster.config.members,
        low,
        clusterSecrets(cluster),
      );
      sendConsensus(connection, { type: 'VOTE', term, granted: true });
      sendConsensus(connection, { type: 'REQUEST_VOTE', term, logTerm: 0, logIndex: 0, transfer: true });
      expect(await closed).to.include(
        `bad message from peer ${low}: VOTE.term must be a whole number in 0..2^48, got ${term}`,
      );
    }
    // Each connection was closed with its reason (above); the operator's log gets the first at warn level
    // and holds back repeats of the same kind from the same peer for a while (runtime/warning-limiter.ts).
    await cluster.cluster.until(
      () => warnings(cluster, high, `bad message from peer ${low}: VOTE.term`).length >= 1,
      'a warning logged for the forged VOTEs',
    );
    await expectUndisturbed(cluster, before);
  });

  it('forged APPEND (a gap, an unknown kind) and garbage snapshot data from a connection holding the secret: refused, logs unchanged', async () => {
    const before = await reports(cluster);
    const [low, high] = followers();
    const term = before[high].term;
    const at = before[high].lastIndex;
    const attacks: [object, string][] = [
      [
        forgedAppend(term, at, {
          entries: [at + 3, term, 1, 3, Buffer.from(MARKER)],
          leaderLastIndex: at + 3,
        }),
        'entries must follow prevIndex without gaps',
      ],
      [forgedAppend(term, at, { entries: [at + 1, term, 1, 99, Buffer.from(MARKER)] }), 'unknown kind 99'],
      [
        forgedAppend(term, at, { entries: [at + 1, term + 5, 1, 3, Buffer.from(MARKER)] }),
        'must not go down and not pass',
      ],
      [
        { type: 'INSTALL_SNAPSHOT', term, index: at + 10, snapshotTerm: term, data: Buffer.from('garbage') },
        'INSTALL_SNAPSHOT.data',
      ],
      [
        {
          type: 'INSTALL_SNAPSHOT',
          term,
          index: at + 10,
          snapshotTerm: term,
          data: pack({ module: Buffer.from([0xd9, 9]), service: null }),
        },
        'INSTALL_SNAPSHOT.data.module is not msgpack',
      ],
    ];
    for (const [message, reason] of attacks) {
      const { connection, closed } = await dialAsPeer(
        cluster.cluster.config.members[high],
        cluster.cluster.config.members,
        low,
        clusterSecrets(cluster),
      );
      sendConsensus(connection, message);
      const closedWith = await closed;
      expect(closedWith, closedWith).to.include(reason);
    }
    await expectUndisturbed(cluster, before);
  });

  it('the largest command the client edge admits (maxCommandBytes) replicates to every member in one APPEND: no election', async () => {
    const before = await reports(cluster);
    const limit = maxCommandBytes(cluster.cluster.config);
    const overhead = encodeKvCommand({ op: 'put', key: 'big', value: 'x'.repeat(70_000) }).length - 70_000;
    const command = { op: 'put', key: 'big', value: 'x'.repeat(limit - overhead) } as const;
    expect(encodeKvCommand(command).length).to.equal(limit);
    const client = await connectClient(cluster, { seed: 4241 });
    try {
      expect(await kv(client, command)).to.deep.equal({ ok: true });
    } finally {
      await client.close();
    }
    // Every member holds it: each one's log reaches the leader's last index.
    const target = (await reports(cluster))[leader].lastIndex;
    expect(target).to.be.above(before[leader].lastIndex);
    await eventually(
      async () => (await reports(cluster)).every((r) => r.lastIndex >= target),
      'every member to hold the large command',
      15_000,
      50,
    );
    await expectUndisturbed(cluster, before);
  });

  it('after every attack the cluster is writable, and no member has a forged entry on disk', async () => {
    const client = await connectClient(cluster, { seed: 4242 });
    try {
      await writeOnce(client, 'security/after', 'ok');
      await expectAllPresent(client, new Map([['security/after', 'ok']]));
    } finally {
      await client.close();
    }
    await expectNoForgedEntries(cluster, MARKER);
  });
});
