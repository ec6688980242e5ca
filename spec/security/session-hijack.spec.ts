// Session hijack (issue 11: a session belongs to its owner), against real members. A session is resumed
// only with the token its OK carried; the members hold only the token's hash, from the replicated
// SESSION_OPEN entry, so a new leader after a failover checks it the same way. An attacker who names
// another client's session is refused with a reason and never touches the owner's connection; a client
// whose own resume is refused (its session timed out while it could reach no leader) opens a new session,
// rejecting what it had sent on the old one as of unknown outcome and sending the rest on the new one.

import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { OutcomeUnknownError } from '../../runtime/client/client.ts';
import {
  closeAll,
  connectClient,
  FAILOVER_MS,
  freeze,
  kv,
  RawConnection,
  shareCluster,
  TestCluster,
  writeOnce,
} from '../runtime/cluster/support.ts';

/** Short, so a session times out within a test; the least the configuration allows with default timing. */
const SESSION_TIMEOUT_MS = 2000;

describe('security: session hijack (issue 11)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  const frozen = new Set<number>();
  const raws: RawConnection[] = [];

  shareCluster(
    () => TestCluster.start({ overrides: { sessionTimeoutMs: SESSION_TIMEOUT_MS } }),
    (started) => {
      cluster = started;
    },
    () => cluster,
    frozen,
    raws,
  );

  /** A raw connection to `endpoint` that asks to resume `sessionId` with `token`: the member's answer. */
  const attack = async (endpoint: string, sessionId: number, token: Uint8Array | null) => {
    const attacker = await RawConnection.open(endpoint);
    raws.push(attacker);
    attacker.connect(undefined, sessionId, token);
    const answer = (await attacker.sessionEvent('the answer to the resume')).body;
    return { answer, closed: await attacker.closed() };
  };

  it("a client that names another's session without its token is refused with a reason; the owner keeps its connection and session", async () => {
    const leader = await cluster.whole();
    const states: string[] = [];
    const owner = await connectClient(cluster, { seed: 1101, onStateChange: (state) => states.push(state) });
    try {
      const session = owner.sessionId as number;
      await writeOnce(owner, 'hijack/before', 'mine');
      const stolen = new Uint8Array(randomBytes(32));
      for (const token of [null, stolen, new Uint8Array(0), new Uint8Array(64)]) {
        const { answer, closed } = await attack(cluster.endpoint(leader), session, token);
        expect(answer.code, JSON.stringify(answer)).to.equal('RESUME_REFUSED');
        expect(answer.sessionId).to.equal(session);
        expect(answer.detail).to.include('resume token does not match');
        expect(closed, 'the member closes the attacker').to.include('resume token does not match');
      }
      // A token longer than any the cluster issues is refused at the edge, before the session manager.
      const oversized = await attack(cluster.endpoint(leader), session, new Uint8Array(65));
      expect(oversized.answer.code).to.equal('ERROR');
      expect(oversized.answer.detail).to.include('resumeToken');
      // The owner never noticed: same connection, same session, still writing.
      await writeOnce(owner, 'hijack/after', 'still mine');
      expect(owner.sessionId).to.equal(session);
      expect(owner.state).to.equal('CONNECTED');
      expect(states, 'the owner never left CONNECTED').to.deep.equal(['CONNECTING', 'CONNECTED']);
      expect(await kv(owner, { op: 'get', key: 'hijack/after' })).to.deep.equal({ value: 'still mine' });
    } finally {
      await owner.close();
    }
  });

  it('after a failover the new leader checks the token from the replicated hash: the owner resumes, the attacker is refused', async () => {
    const leader = await cluster.whole();
    const owner = await connectClient(cluster, { seed: 1102 });
    try {
      const session = owner.sessionId as number;
      await writeOnce(owner, 'hijack/failover/before', 'b');
      await cluster.cluster.kill(leader);
      const next = await cluster.newLeader(leader, performance.now());
      await writeOnce(owner, 'hijack/failover/after', 'a');
      expect(owner.leaderId).to.equal(next.id);
      expect(owner.sessionId, 'the owner resumed its own session').to.equal(session);
      const { answer } = await attack(cluster.endpoint(next.id), session, new Uint8Array(randomBytes(32)));
      expect(answer.code).to.equal('RESUME_REFUSED');
      await writeOnce(owner, 'hijack/failover/last', 'l');
    } finally {
      await owner.close();
    }
  });

  it('a refused resume: the library opens a new session; what it sent on the old one rejects as of unknown outcome, the rest goes on the new one', async () => {
    const leader = await cluster.whole();
    // This client knows only the leader, so while the leader is frozen it can reach no other member.
    const client = await connectClient(cluster, {
      seed: 1103,
      endpoints: [cluster.endpoint(leader)],
      maxInFlight: 1,
      commandTimeoutMs: 30_000,
    });
    try {
      const session = client.sessionId as number;
      await writeOnce(client, 'refused/before', 'b');
      freeze(cluster, leader, 'SIGSTOP');
      frozen.add(leader);
      // Sent on the old session (it may or may not be applied) and, behind it, never sent at all.
      const sent = writeOnce(client, 'refused/sent', 's').then(
        () => null,
        (error: Error) => error,
      );
      const queued = writeOnce(client, 'refused/queued', 'q');
      // The others elect a leader, which times the unreachable session out.
      await cluster.newLeader(leader, performance.now());
      await new Promise((resolve) => setTimeout(resolve, SESSION_TIMEOUT_MS + FAILOVER_MS));
      freeze(cluster, leader, 'SIGCONT');
      frozen.delete(leader);
      const error = await sent;
      expect(error, 'the command sent on the lost session').to.be.instanceOf(OutcomeUnknownError);
      expect(error?.message).to.include(`session ${session}`).and.include('may or may not have been applied');
      await queued;
      expect(client.state).to.equal('CONNECTED');
      expect(client.sessionId, 'a new session').to.not.equal(session);
      await writeOnce(client, 'refused/after', 'a');
      expect(await kv(client, { op: 'get', key: 'refused/queued' })).to.deep.equal({ value: 'q' });
    } finally {
      await closeAll([client]);
    }
  });
});
