// Process-level failover tests: three real `chorus member` processes on loopback, real clients, and
// members killed (SIGKILL), frozen (SIGSTOP) or stopped gracefully (SIGTERM) under load. After each,
// every acknowledged write is read back through the log, and every write's reply shows it was applied
// exactly once (see writeOnce). One cluster serves the whole file; before each test every member is
// running again with its election settled, so a test starts from a whole cluster.

import { expect } from 'chai';
import { pack } from 'msgpackr';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { decodeSessionMessage } from '../../../actors/log/session-message.ts';
import { decodeKvCommand } from '../../../actors/services/kv.ts';
import { CONSENSUS_MODULE_SERVICE_ID, openMemberStore } from '../../../persistence/index.ts';
import {
  closeAll,
  connectClient,
  expectAllPresent,
  FAILOVER_MS,
  freeze,
  RawConnection,
  type StartupReport,
  shareCluster,
  TestCluster,
  Writers,
  writeOnce,
} from './support.ts';

/**
 * A new leader must be found within this long after the old one dies: one failover (the heartbeat
 * timeout plus the election timeout, 900 ms) and slack for two busy cores shared with other test runs.
 */
const NEW_LEADER_BOUND_MS = 3 * FAILOVER_MS;

/**
 * The member's start-up report after a restart: a non-empty log, and every entry after its snapshot
 * (all that the log still holds) read and checksum-validated before it served anything.
 */
const expectValidated = (cluster: TestCluster, id: number): StartupReport => {
  const report = cluster.startups[id];
  if (report === null) throw new Error(`member ${id} printed no start-up report`);
  expect(report.lastIndex, `entries in member ${id}'s log`).to.be.above(0);
  expect(report.scanned, `entries member ${id} validated at start-up`).to.be.at.least(
    report.lastIndex - report.snapshotIndex,
  );
  return report;
};

describe('cluster processes: failover (N2, N5, C1, C2, C3, O3, O4)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  const frozen = new Set<number>();
  const raws: RawConnection[] = [];

  shareCluster(
    () => TestCluster.start(),
    (started) => {
      cluster = started;
    },
    () => cluster,
    frozen,
    raws,
  );

  it('N2: leader SIGKILLed under concurrent writes — a new leader within the bound, clients find it without help, every acknowledged write present exactly once', async () => {
    const leader = await cluster.whole();
    const clients = await Promise.all([1, 2, 3].map((seed) => connectClient(cluster, { seed })));
    try {
      const writers = new Writers(clients, 'n2').start();
      await writers.acknowledge(24, cluster);
      const killedAt = performance.now();
      await cluster.cluster.kill(leader);
      const next = await cluster.newLeader(leader, killedAt);
      await writers.acknowledge(24, cluster);
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);
      expect(next.ms, 'ms from SIGKILL to a new leader').to.be.below(NEW_LEADER_BOUND_MS);
      for (const client of clients) expect(client.leaderId, 'the leader each client found').to.equal(next.id);
      await expectAllPresent(clients[0], writers.acknowledged);
    } finally {
      await closeAll(clients);
    }
  });

  it('C1: client disconnected during an election reconnects to the new leader, keeps its session and resends what was not acknowledged', async () => {
    const leader = await cluster.whole();
    const states: string[] = [];
    const client = await connectClient(cluster, { seed: 11, onStateChange: (state) => states.push(state) });
    try {
      const session = client.sessionId;
      await writeOnce(client, 'c1/before', 'b');
      // Some in flight as the leader dies, more sent while the client has no leader.
      const inFlight = Array.from({ length: 8 }, (_, i) => writeOnce(client, `c1/in-flight/${i}`, `f${i}`));
      await cluster.cluster.kill(leader);
      await cluster.cluster.until(
        () => client.state !== 'CONNECTED',
        'the client to notice the leader is gone',
      );
      const during = Array.from({ length: 8 }, (_, i) => writeOnce(client, `c1/during/${i}`, `d${i}`));
      expect(client.unacknowledged, 'commands waiting for a leader').to.be.at.least(8);
      await Promise.all([...inFlight, ...during]);
      expect(states, 'connection states').to.include('AWAITING_NEW_LEADER');
      expect(client.state).to.equal('CONNECTED');
      expect(client.sessionId, 'the session resumed on the new leader').to.equal(session);
      expect(client.leaderId).to.equal(cluster.cluster.leader());
      expect(client.leaderId).to.not.equal(leader);
      const written = new Map([['c1/before', 'b']]);
      for (let i = 0; i < 8; i++) written.set(`c1/in-flight/${i}`, `f${i}`).set(`c1/during/${i}`, `d${i}`);
      await expectAllPresent(client, written);
    } finally {
      await client.close();
    }
  });

  it('C2: a retry sent to the new leader after a failover is recognised — applied once, same reply', async () => {
    const leader = await cluster.whole();
    const first = await RawConnection.open(cluster.endpoint(leader));
    raws.push(first);
    const session = await first.openSession();
    first.sendCommand(session, 1, { op: 'cas', key: 'c2/failover/once', expected: null, value: 'once' });
    expect(await first.reply(1)).to.deep.equal({ ok: true });
    first.sendCommand(session, 2, { op: 'put', key: 'c2/failover/register', value: 'old' });
    expect(await first.reply(2)).to.deep.equal({ ok: true });
    first.sendCommand(session, 3, { op: 'put', key: 'c2/failover/register', value: 'new' });
    expect(await first.reply(3)).to.deep.equal({ ok: true });
    await cluster.cluster.kill(leader);
    const next = await cluster.newLeader(leader, performance.now());
    // The client resumes its session on the new leader and retries commands whose replies it lost.
    const second = await RawConnection.open(cluster.endpoint(next.id));
    raws.push(second);
    second.connect(undefined, session, first.resumeToken);
    expect((await second.sessionEvent('OK for the resume')).body).to.deep.equal({
      code: 'OK',
      sessionId: session,
      leaderId: next.id,
    });
    second.sendCommand(session, 1, { op: 'cas', key: 'c2/failover/once', expected: null, value: 'once' });
    expect(await second.reply(1), 'reply to the retried cas').to.deep.equal({ ok: true });
    second.sendCommand(session, 2, { op: 'put', key: 'c2/failover/register', value: 'old' });
    expect(await second.reply(2), 'reply to the retried old put').to.deep.equal({ ok: true });
    second.sendCommand(session, 4, { op: 'get', key: 'c2/failover/register' });
    expect(await second.reply(4), 'the register: the retried put was not applied again').to.deep.equal({
      value: 'new',
    });
    second.request({ type: 'CLOSE', sessionId: session });
    expect((await second.sessionEvent('CLOSED')).body.reason).to.equal('CLIENT_ACTION');
  });

  it('C3: leader frozen before it reads the input, then killed — the input is lost, the client resends it to the new leader, applied once', async () => {
    const leader = await cluster.whole();
    // Only the kill may make the client resend here, not its own reply timeout.
    const client = await connectClient(cluster, { seed: 21, replyTimeoutMs: 60_000 });
    try {
      await writeOnce(client, 'c3/a/before', 'b');
      freeze(cluster, leader, 'SIGSTOP');
      frozen.add(leader);
      // The command lands in the frozen leader's socket buffer, unread.
      const write = writeOnce(client, 'c3/a/lost', 'x');
      const next = await cluster.newLeader(leader, performance.now());
      expect(client.unacknowledged, 'the command is still unanswered').to.equal(1);
      await cluster.cluster.kill(leader); // dies with the input unread
      frozen.delete(leader);
      await write;
      expect(client.leaderId).to.equal(next.id);
      await expectAllPresent(
        client,
        new Map([
          ['c3/a/before', 'b'],
          ['c3/a/lost', 'x'],
        ]),
      );
    } finally {
      await client.close();
    }
  });

  it('C3: leader frozen and silent (not killed) — the client times the connection out, resends to the new leader, applied once', async () => {
    const leader = await cluster.whole();
    const client = await connectClient(cluster, { seed: 25 });
    try {
      await writeOnce(client, 'c3/silent/before', 'b');
      freeze(cluster, leader, 'SIGSTOP');
      frozen.add(leader);
      const sentAt = performance.now();
      // Nothing closes the connection: only the silence (replyTimeoutMs, 750 ms by default, unanswered KEEPALIVE included) tells the client.
      await writeOnce(client, 'c3/silent/lost', 'x');
      const tookMs = performance.now() - sentAt;
      expect(client.leaderId, 'the leader the client found').to.not.equal(leader);
      expect(client.leaderId).to.equal(cluster.cluster.leader());
      expect(tookMs, 'ms until the write was answered').to.be.below(10_000);
      // The old leader wakes up, finds a newer term and steps down; its stale input never commits.
      freeze(cluster, leader, 'SIGCONT');
      frozen.delete(leader);
      await cluster.whole();
      await expectAllPresent(
        client,
        new Map([
          ['c3/silent/before', 'b'],
          ['c3/silent/lost', 'x'],
        ]),
      );
    } finally {
      await client.close();
    }
  });

  it('C3: leader dies with the input appended but not committed (followers frozen) — the client resends to the new leader, applied once', async () => {
    const leader = await cluster.whole();
    const followers = [0, 1, 2].filter((id) => id !== leader);
    const client = await connectClient(cluster, { seed: 31 });
    try {
      await writeOnce(client, 'c3/b/before', 'b');
      for (const id of followers) {
        freeze(cluster, id, 'SIGSTOP');
        frozen.add(id);
      }
      const write = writeOnce(client, 'c3/b/uncommitted', 'x');
      // With no follower answering, check-quorum makes the leader step down: by then it has long since
      // read and appended the command, and it cannot have committed it.
      const view = cluster.cluster.views[leader];
      const from = view.lines.length;
      await cluster.cluster.until(
        () => view.lines.slice(from).some((line) => line.includes('ROLE_CHANGE: LEADER ->')),
        'the isolated leader to step down',
      );
      expect(client.unacknowledged, 'the command is unanswered').to.equal(1);
      await cluster.cluster.kill(leader);
      for (const id of followers) freeze(cluster, id, 'SIGCONT');
      frozen.clear();
      await write;
      expect(followers, 'the new leader is a former follower').to.include(client.leaderId);
      await expectAllPresent(
        client,
        new Map([
          ['c3/b/before', 'b'],
          ['c3/b/uncommitted', 'x'],
        ]),
      );
    } finally {
      await client.close();
    }
  });

  it('O3: SIGTERM on the leader drains, hands leadership over and snapshots — exit 0, a new leader at once, no acknowledged write lost', async () => {
    const leader = await cluster.whole();
    const clients = await Promise.all([41, 42].map((seed) => connectClient(cluster, { seed })));
    try {
      const writers = new Writers(clients, 'o3-term').start();
      await writers.acknowledge(16, cluster);
      const signalledAt = performance.now();
      const exit = await cluster.cluster.signal(leader, 'SIGTERM');
      const next = await cluster.newLeader(leader, signalledAt);
      expect(exit, 'exit of the SIGTERMed member').to.deep.equal({ code: 0, signal: null });
      // A handover, not a failover: the member it handed over to leads (no follower waited for a
      // silent leader), and it was quick.
      const records = cluster.cluster.views[leader].lines.map((line) => JSON.parse(line));
      const handover = records.find((record) => record.msg === 'handing leadership over before shutdown');
      expect(handover, 'the handover record').to.not.equal(undefined);
      expect(next.id, 'the new leader').to.equal(handover.to);
      expect(records.map((record) => record.msg)).to.include('member closed');
      expect(next.ms, 'ms from SIGTERM to the new leader').to.be.below(NEW_LEADER_BOUND_MS);
      await writers.acknowledge(16, cluster);
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);
      // It left a snapshot: the restart starts from it instead of replaying the whole log.
      cluster.restart(leader);
      await cluster.whole();
      const report = expectValidated(cluster, leader);
      expect(report.snapshotIndex, 'snapshot the member restarted from').to.be.above(0);
      await expectAllPresent(clients[0], writers.acknowledged);
    } finally {
      await closeAll(clients);
    }
  });

  it('O3: SIGTERM on a follower exits 0 at once and does not disturb the leader', async () => {
    const leader = await cluster.whole();
    const follower = [0, 1, 2].find((id) => id !== leader) as number;
    const term = cluster.cluster.views[leader].term;
    const client = await connectClient(cluster, { seed: 45 });
    try {
      await writeOnce(client, 'o3-follower/before', 'b');
      const exit = await cluster.cluster.signal(follower, 'SIGTERM');
      expect(exit, 'exit of the SIGTERMed follower').to.deep.equal({ code: 0, signal: null });
      await writeOnce(client, 'o3-follower/after', 'a');
      expect(cluster.cluster.leader(), 'the leader').to.equal(leader);
      expect(cluster.cluster.views[leader].term, "the leader's term").to.equal(term);
      await expectAllPresent(
        client,
        new Map([
          ['o3-follower/before', 'b'],
          ['o3-follower/after', 'a'],
        ]),
      );
    } finally {
      await client.close();
    }
  });

  it('O3: after SIGKILL the restarted member validates every entry of its store and recovers, committed data present in its own log', async () => {
    const leader = await cluster.whole();
    const client = await connectClient(cluster, { seed: 51 });
    try {
      const writers = new Writers([client], 'o3-kill').start();
      await writers.acknowledge(12, cluster);
      await cluster.cluster.kill(leader);
      await cluster.newLeader(leader, performance.now());
      await writers.acknowledge(12, cluster); // written while the member is down
      await writers.stop();
      cluster.restart(leader);
      await cluster.whole();
      expectValidated(cluster, leader);
      await expectAllPresent(client, writers.acknowledged);
      // Freeze the third member: now nothing commits unless the restarted member has flushed it, and
      // the log up to it. One more write, and its own log must hold every acknowledged write.
      const current = cluster.cluster.leader() as number;
      const third = [0, 1, 2].find((id) => id !== leader && id !== current) as number;
      freeze(cluster, third, 'SIGSTOP');
      frozen.add(third);
      await writeOnce(client, 'o3-kill/sync', 's');
      writers.acknowledged.set('o3-kill/sync', 's');
      await cluster.cluster.kill(leader);
      const store = await openMemberStore(cluster.cluster.memberDir(leader));
      const logged = new Map<string, string>();
      try {
        for (const entry of store.log.read(store.log.firstIndex, store.log.lastIndex)) {
          if (entry.kind !== EntryKind.SESSION_MESSAGE) continue;
          const command = decodeKvCommand(decodeSessionMessage(entry.payload).body);
          if (command.op === 'cas') logged.set(command.key, command.value);
        }
      } finally {
        await store.close();
      }
      const missing = [...writers.acknowledged].filter(([key, value]) => logged.get(key) !== value);
      expect(missing, 'acknowledged writes missing from the restarted member').to.deep.equal([]);
      freeze(cluster, third, 'SIGCONT');
      frozen.delete(third);
    } finally {
      await client.close();
    }
  });

  it('O4: a snapshot of an incompatible version is refused at start-up with a clear error; once invalidated, the member falls back and recovers', async () => {
    const leader = await cluster.whole();
    const follower = [0, 1, 2].find((id) => id !== leader) as number;
    const client = await connectClient(cluster, { seed: 71 });
    try {
      const written = new Map<string, string>();
      for (let i = 0; i < 4; i++) {
        await writeOnce(client, `o4-snapshot/${i}`, `v${i}`);
        written.set(`o4-snapshot/${i}`, `v${i}`);
      }
      // SIGTERM leaves a snapshot; then a newer build's snapshot set appears on top of it (a failed upgrade).
      expect(await cluster.cluster.signal(follower, 'SIGTERM')).to.deep.equal({ code: 0, signal: null });
      const store = await openMemberStore(cluster.cluster.memberDir(follower));
      try {
        const latest = store.recordingLog.latestValidSnapshotSet();
        if (latest === undefined) throw new Error(`member ${follower} left no snapshot at SIGTERM`);
        const future = await store.snapshots.save(
          {
            serviceId: CONSENSUS_MODULE_SERVICE_ID,
            logIndex: latest.logIndex,
            term: latest.term,
            timestamp: latest.timestamp,
          },
          pack({ version: 99, sessions: [] }),
        );
        await store.recordingLog.appendSnapshotSet({
          term: latest.term,
          logIndex: latest.logIndex,
          timestamp: latest.timestamp,
          snapshots: [
            { serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: future.snapshotId },
            ...latest.snapshots
              .filter((entry) => entry.serviceId !== CONSENSUS_MODULE_SERVICE_ID)
              .map(({ serviceId, snapshotId }) => ({ serviceId, snapshotId })),
          ],
        });
      } finally {
        await store.close();
      }
      const view = cluster.cluster.views[follower];
      cluster.restart(follower);
      await cluster.cluster.until(() => !view.running, `member ${follower} to refuse to start`);
      expect(view.exitCode, 'exit code of the refused start').to.not.equal(0);
      expect(view.lines.join('\n')).to.include('session snapshot version 99 is not supported');
      // The operator's way out: invalidate the snapshot set; the member starts from the one before it.
      const repair = await openMemberStore(cluster.cluster.memberDir(follower));
      try {
        expect((await repair.recordingLog.invalidateLatestSnapshot())?.valid).to.equal(false);
      } finally {
        await repair.close();
      }
      await cluster.whole();
      expect(expectValidated(cluster, follower).snapshotIndex, 'the snapshot it fell back to').to.be.above(0);
      await expectAllPresent(client, written);
    } finally {
      await client.close();
    }
  });

  it('N5: every member SIGKILLed at once — each restarts from its own log, every acknowledged write is there', async () => {
    await cluster.whole();
    const clients = await Promise.all([61, 62].map((seed) => connectClient(cluster, { seed })));
    const writers = new Writers(clients, 'n5').start();
    try {
      await writers.acknowledge(24, cluster);
      await Promise.all([0, 1, 2].map((id) => cluster.cluster.kill(id)));
    } finally {
      const stopping = writers.stop();
      await closeAll(clients);
      await stopping;
    }
    // Writes in flight at the kill have an unknown outcome (their clients closed): only acknowledged ones count.
    const acknowledged = writers.acknowledged;
    expect(acknowledged.size).to.be.at.least(24);
    await cluster.whole();
    for (const id of [0, 1, 2]) expectValidated(cluster, id);
    const reader = await connectClient(cluster, { seed: 63 });
    try {
      await expectAllPresent(reader, acknowledged);
    } finally {
      await reader.close();
    }
  });
});
