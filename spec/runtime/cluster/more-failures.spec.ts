// More process-level failure tests on real `chorus member` processes: a follower crash (N1), a minority
// of five crashing (N3), a majority crashing (N4), a stalled leader (R3), a member whose directory is lost
// (D5) and the cluster tool's operator commands (O6). Each checks its property, and that every
// acknowledged write is present exactly once afterwards (writeOnce answers `{ ok: false }` to a double
// application). The three-member tests share one cluster; N3 has its own five-member cluster.

import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { encodeKvCommand } from '../../../actors/services/kv.ts';
import { adminRequest } from '../../../runtime/admin.ts';
import { CommandTimeoutError } from '../../../runtime/client/client.ts';
import { eventually } from '../../support/ports.ts';
import { caughtUp, status } from './member-status.ts';
import {
  closeAll,
  connectClient,
  expectAllPresent,
  freeze,
  kv,
  shareCluster,
  TestCluster,
  Writers,
  writeOnce,
} from './support.ts';

const CHORUS_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'chorus.js');

/** `npx chorus tool DIR COMMAND [--to N]` as its own process; its exit code and output. */
const runToolProcess = (
  dir: string,
  command: string,
  extra: readonly string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [CHORUS_BIN, 'tool', dir, command, ...extra],
      { timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });

/** The terms in which member `id` announced it became LEADER, from its log lines since `from`. */
const leaderTermsSince = (cluster: TestCluster, id: number, from: number): number[] =>
  cluster.cluster.views[id].lines
    .slice(from)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((record) => String(record.msg ?? '').startsWith('ROLE_CHANGE') && record.to === 'LEADER')
    .map((record) => Number(record.term));

describe('cluster processes: more failures on three members (N1, N4, R3, D5, O6)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  const frozen = new Set<number>();

  shareCluster(
    () => TestCluster.start(),
    (started) => {
      cluster = started;
    },
    () => cluster,
    frozen,
  );

  it('N1: a follower SIGKILLed under writes — writes keep being acknowledged, same leader and term; on restart it catches up from its snapshot + log', async () => {
    const leader = await cluster.whole();
    const follower = [0, 1, 2].find((id) => id !== leader) as number;
    const term = cluster.cluster.views[leader].term;
    const clients = await Promise.all([101, 102].map((seed) => connectClient(cluster, { seed })));
    try {
      const writers = new Writers(clients, 'n1').start();
      await writers.acknowledge(12, cluster);
      // The follower snapshots itself, so its restart starts from a snapshot and replays the log after it.
      const taken = (await adminRequest(cluster.cluster.memberDir(follower), { command: 'snapshot' })) as {
        snapshotIndex: number;
      };
      expect(taken.snapshotIndex, "the follower's snapshot").to.be.above(0);
      await writers.acknowledge(8, cluster);
      await cluster.cluster.kill(follower);
      // No pause: with one follower down the other still makes a quorum.
      await writers.acknowledge(24, cluster, 5000);
      expect(cluster.cluster.leader(), 'the leader while the follower is down').to.equal(leader);
      expect(cluster.cluster.views[leader].term, "the leader's term").to.equal(term);
      cluster.restart(follower);
      await writers.acknowledge(8, cluster); // and while it catches up
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);
      const commit = (await status(cluster, leader)).commitIndex;
      await caughtUp(cluster, follower, commit);
      const report = cluster.startups[follower];
      expect(report?.snapshotIndex, 'snapshot the follower restarted from').to.be.at.least(
        taken.snapshotIndex,
      );
      expect(report?.scanned, 'log entries after its snapshot it validated').to.be.above(0);
      expect(cluster.cluster.leader(), 'the leader after the restart').to.equal(leader);
      await expectAllPresent(clients[0], writers.acknowledged);
    } finally {
      await closeAll(clients);
    }
  });

  it('R3: the leader stalls (SIGSTOP) — the followers elect; on SIGCONT the old leader steps down to FOLLOWER of the new one; no split brain, every acknowledged write present', async () => {
    const leader = await cluster.whole();
    const clients = await Promise.all([111, 112].map((seed) => connectClient(cluster, { seed })));
    try {
      const writers = new Writers(clients, 'r3').start();
      await writers.acknowledge(12, cluster);
      freeze(cluster, leader, 'SIGSTOP');
      frozen.add(leader);
      const next = await cluster.newLeader(leader, performance.now());
      // The clients find the new leader on their own and keep writing through the stall.
      await writers.acknowledge(16, cluster);
      const oldLines = cluster.cluster.views[leader].lines.length;
      freeze(cluster, leader, 'SIGCONT');
      frozen.delete(leader);
      await eventually(
        async () => {
          const s = await status(cluster, leader);
          return s.role === 'FOLLOWER' && s.leaderId === next.id;
        },
        `member ${leader} to step down and follow member ${next.id}`,
        10_000,
        25,
      );
      await writers.acknowledge(8, cluster);
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);
      // No split brain: every member names the same leader, and only that one says it leads.
      const statuses = await Promise.all([0, 1, 2].map((id) => status(cluster, id)));
      expect(
        statuses.map((s) => s.leaderId),
        'the leader each member names',
      ).to.deep.equal([next.id, next.id, next.id]);
      expect(
        statuses.filter((s) => s.role === 'LEADER').map((s) => s.memberId),
        'members that say they lead',
      ).to.deep.equal([next.id]);
      expect(
        leaderTermsSince(cluster, leader, oldLines),
        'terms the old leader led after waking',
      ).to.deep.equal([]);
      await expectAllPresent(clients[0], writers.acknowledged);
    } finally {
      await closeAll(clients);
    }
  });

  it("D5: a member's directory is lost — wiped and restarted, it installs the leader's snapshot, replays the log after it and ends with the same data", async () => {
    const leader = await cluster.whole();
    const lost = [0, 1, 2].find((id) => id !== leader) as number;
    const client = await connectClient(cluster, { seed: 121 });
    try {
      const writers = new Writers([client], 'd5').start();
      await writers.acknowledge(16, cluster);
      await cluster.cluster.kill(lost);
      await writers.acknowledge(8, cluster);
      // The leader snapshots and purges its log: the wiped member can only start from that snapshot.
      const taken = (await adminRequest(cluster.cluster.memberDir(leader), { command: 'snapshot' })) as {
        snapshotIndex: number;
        taken: boolean;
      };
      expect(taken.taken, 'the leader took a snapshot').to.equal(true);
      await eventually(
        async () => (await status(cluster, leader)).log.firstIndex > 1,
        "the leader's log purged up to its snapshot",
        10_000,
        25,
      );
      await writers.acknowledge(8, cluster); // entries after the snapshot, to replay from the log
      rmSync(cluster.cluster.memberDir(lost), { recursive: true, force: true });
      cluster.restart(lost);
      await writers.acknowledge(8, cluster);
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);
      await cluster.whole();
      expect(cluster.startups[lost]?.lastIndex, "the wiped member's log at start-up").to.equal(0);
      const commit = (await status(cluster, leader)).commitIndex;
      await caughtUp(cluster, lost, commit);
      const rebuilt = await status(cluster, lost);
      expect(rebuilt.snapshotIndex, 'the snapshot it installed').to.be.at.least(taken.snapshotIndex);
      expect(rebuilt.log.firstIndex, 'first entry of its rebuilt log').to.be.above(taken.snapshotIndex);
      const installed = cluster.cluster.views[lost].lines.filter((line) =>
        line.includes('snapshot installed from the leader'),
      );
      expect(installed, 'snapshot installs it logged').to.have.lengthOf(1);
      // Its own data: make it the leader and read everything back through it.
      await adminRequest(cluster.cluster.memberDir(leader), { command: 'transfer-leadership', to: lost });
      await cluster.cluster.until(() => cluster.cluster.leader() === lost, `member ${lost} to lead`);
      await expectAllPresent(client, writers.acknowledged);
      expect(client.leaderId, 'the member that answered the reads').to.equal(lost);
    } finally {
      await client.close();
    }
  });

  it('O6: `chorus tool DIR snapshot` on a real member advances its snapshotIndex', async () => {
    const leader = await cluster.whole();
    const client = await connectClient(cluster, { seed: 131 });
    try {
      for (let i = 0; i < 4; i++) await writeOnce(client, `o6-snapshot/${i}`, `v${i}`);
      const before = await status(cluster, leader);
      const run = await runToolProcess(cluster.cluster.memberDir(leader), 'snapshot', ['--json']);
      expect(run.code, `exit of the tool (${run.stderr})`).to.equal(0);
      expect(JSON.parse(run.stdout), 'what the tool printed').to.deep.include({ taken: true });
      const after = await status(cluster, leader);
      expect(after.snapshotIndex, 'snapshotIndex after the tool').to.be.above(before.snapshotIndex);
      expect(after.snapshotIndex).to.be.at.least(before.appliedIndex);
    } finally {
      await client.close();
    }
  });

  it('O6: `chorus tool DIR suspend` makes writes BUSY and unaccepted until `resume`; then they are accepted', async () => {
    const leader = await cluster.whole();
    const dir = cluster.cluster.memberDir(leader);
    const client = await connectClient(cluster, { seed: 141 });
    try {
      await writeOnce(client, 'o6-suspend/before', 'b');
      const suspend = await runToolProcess(dir, 'suspend');
      expect(suspend.code, `exit of suspend (${suspend.stderr})`).to.equal(0);
      expect((await status(cluster, leader)).moduleState).to.equal('SUSPENDED');
      const refused = await client
        .send(encodeKvCommand({ op: 'put', key: 'o6-suspend/during', value: 'x' }), { timeoutMs: 1500 })
        .then(
          () => null,
          (error: Error) => error,
        );
      expect(refused, 'the write while suspended').to.be.instanceOf(CommandTimeoutError);
      expect(client.busyAnswers, 'BUSY answers while suspended').to.be.above(0);
      const resume = await runToolProcess(dir, 'resume');
      expect(resume.code, `exit of resume (${resume.stderr})`).to.equal(0);
      expect((await status(cluster, leader)).moduleState).to.equal('ACTIVE');
      await writeOnce(client, 'o6-suspend/after', 'a');
      // The write sent while suspended was never taken into the log.
      expect(await kv(client, { op: 'get', key: 'o6-suspend/during' })).to.deep.equal({ value: null });
      await expectAllPresent(
        client,
        new Map([
          ['o6-suspend/before', 'b'],
          ['o6-suspend/after', 'a'],
        ]),
      );
    } finally {
      await client.close();
    }
  });

  it('O6: `chorus tool DIR transfer-leadership --to N` moves leadership to member N; writes go on', async () => {
    const leader = await cluster.whole();
    const to = [0, 1, 2].find((id) => id !== leader) as number;
    const client = await connectClient(cluster, { seed: 151 });
    try {
      await writeOnce(client, 'o6-transfer/before', 'b');
      const run = await runToolProcess(cluster.cluster.memberDir(leader), 'transfer-leadership', [
        '--to',
        String(to),
      ]);
      expect(run.code, `exit of the tool (${run.stderr})`).to.equal(0);
      await cluster.cluster.until(() => cluster.cluster.leader() === to, `member ${to} to lead`);
      expect((await status(cluster, to)).role).to.equal('LEADER');
      expect((await status(cluster, leader)).leaderId, 'the leader the old leader names').to.equal(to);
      await writeOnce(client, 'o6-transfer/after', 'a');
      expect(client.leaderId, 'the leader the client found').to.equal(to);
      await expectAllPresent(
        client,
        new Map([
          ['o6-transfer/before', 'b'],
          ['o6-transfer/after', 'a'],
        ]),
      );
    } finally {
      await client.close();
    }
  });

  it('N4: a majority SIGKILLed (2 of 3) — writes fail closed, the survivor never leads a new term alone; restarting one member resumes with every committed entry', async () => {
    const leader = await cluster.whole();
    const term = cluster.cluster.views[leader].term;
    const survivor = [0, 1, 2].find((id) => id !== leader) as number;
    const killed = [0, 1, 2].filter((id) => id !== survivor);
    const client = await connectClient(cluster, { seed: 161 });
    try {
      const writers = new Writers([client], 'n4').start();
      await writers.acknowledge(16, cluster);
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);
      const from = cluster.cluster.views[survivor].lines.length;
      await Promise.all(killed.map((id) => cluster.cluster.kill(id)));
      const refused = await client
        .send(encodeKvCommand({ op: 'put', key: 'n4/no-quorum', value: 'x' }), { timeoutMs: 2500 })
        .then(
          () => null,
          (error: Error) => error,
        );
      expect(refused, 'the write with no quorum').to.be.instanceOf(CommandTimeoutError);
      const alone = await status(cluster, survivor);
      expect(alone.role, 'the survivor').to.not.equal('LEADER');
      expect(alone.commitIndex, "the survivor's commit").to.be.at.least(1);
      expect(leaderTermsSince(cluster, survivor, from), 'terms the survivor led alone').to.deep.equal([]);
      cluster.restart(killed[0]);
      const next = await cluster.cluster.waitForLeader();
      expect(cluster.cluster.views[next].term, 'the term of the resumed cluster').to.be.above(term);
      await writeOnce(client, 'n4/after', 'a');
      writers.acknowledged.set('n4/after', 'a');
      await expectAllPresent(client, writers.acknowledged);
    } finally {
      await client.close();
    }
  });
});

describe('cluster processes: a minority of five crashes (N3)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({ members: 5 });
  });
  after(async () => {
    await cluster?.close();
  });

  it('N3: 2 of 5 members SIGKILLed under writes — no pause, same leader, status shows no failure budget left; nothing acknowledged lost', async () => {
    const leader = await cluster.whole();
    const term = cluster.cluster.views[leader].term;
    const killed = [0, 1, 2, 3, 4].filter((id) => id !== leader).slice(0, 2);
    const clients = await Promise.all([171, 172].map((seed) => connectClient(cluster, { seed })));
    try {
      const writers = new Writers(clients, 'n3').start();
      await writers.acknowledge(12, cluster);
      await Promise.all(killed.map((id) => cluster.cluster.kill(id)));
      await writers.acknowledge(24, cluster, 5000);
      expect(cluster.cluster.leader(), 'the leader with two members down').to.equal(leader);
      expect(cluster.cluster.views[leader].term, "the leader's term").to.equal(term);
      // Exactly a quorum left: the leader sees two of its four peers, one more loss would stop commits.
      await eventually(
        async () => (await status(cluster, leader)).connectedPeers.length === 2,
        'the leader to see only two peers',
        10_000,
        25,
      );
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);
      await cluster.whole();
      await expectAllPresent(clients[0], writers.acknowledged);
    } finally {
      await closeAll(clients);
    }
  });
});
