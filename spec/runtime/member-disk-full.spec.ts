// D1 and D2 at the level the catalogue names (proc): three real member processes, each member directory
// on its own small tmpfs; one member's file system is filled with a ballast file until the kernel answers
// ENOSPC. Its next append fails with DISK_FULL: it must step out of the cluster (no exit, no corruption);
// for the leader (D1) the others elect and clients carry on through the new leader, for a follower (D2)
// the leader goes on with the other follower; once the ballast is removed the member rejoins from its own
// snapshot + log and catches up. Needs root to mount tmpfs; skipped otherwise.

import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { unpack } from 'msgpackr';
import { encodeKvCommand, type KvCommand, type KvResult } from '../../actors/services/kv.ts';
import { adminRequest } from '../../runtime/admin.ts';
import { ChorusClient } from '../../runtime/client/client.ts';
import { clusterConfigSchema } from '../../runtime/config.ts';
import { LocalCluster } from '../../runtime/local-cluster.ts';
import type { MemberStatus } from '../../runtime/member.ts';

const MEMBERS = 3;
const DEFAULTS = clusterConfigSchema.parse({
  members: [{ id: 0, host: '127.0.0.1', clientPort: 1, peerPort: 2 }],
});
/** One failover with the default timing (heartbeat timeout, then an election), with room for a loaded machine. */
const FAILOVER_BOUND_MS = 10 * (DEFAULTS.leaderHeartbeatTimeoutMs + DEFAULTS.electionTimeoutMs);
/** Three member processes starting (tsx compiling on a loaded 2-core machine) and their first election. */
const START_BOUND_MS = 60_000;

/** Write zeros into `file` until the file system refuses with ENOSPC. */
const fillUp = (file: string): void => {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
};

const kv = async (client: ChorusClient, command: KvCommand): Promise<KvResult> =>
  unpack(await client.send(encodeKvCommand(command))) as KvResult;

/** A started cluster with every member's log records (messages) and its admin `status`. */
interface Running {
  readonly cluster: LocalCluster;
  readonly client: ChorusClient;
  readonly records: Map<number, string[]>;
  status(id: number): Promise<MemberStatus>;
  said(id: number, prefix: string): boolean;
}

/** Writes of 8 KiB until member `id` reports its storage failure; every write must be acknowledged. */
const writeUntilFenced = async (run: Running, id: number): Promise<void> => {
  const value = 'x'.repeat(8 * 1024);
  const failed = () => run.said(id, 'storage failed, out of the cluster');
  for (let i = 0; i < 2_000 && !failed(); i++) {
    expect(await kv(run.client, { op: 'put', key: `during-${i}`, value })).to.deep.include({ ok: true });
  }
  expect(failed(), `member ${id} reports its storage failure`).to.equal(true);
};

/** After the ballast is gone: member `id` rejoins and applies what `leader` had committed. */
const expectRejoined = async (run: Running, id: number, leader: number): Promise<void> => {
  await run.cluster.until(
    () => run.said(id, 'storage works again: rejoining the cluster'),
    `member ${id} to rejoin`,
    FAILOVER_BOUND_MS,
  );
  const { commitIndex } = await run.status(leader);
  const deadline = Date.now() + FAILOVER_BOUND_MS;
  let rejoined = await run.status(id);
  while (rejoined.appliedIndex < commitIndex && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    rejoined = await run.status(id);
  }
  expect(rejoined.storageFailure).to.equal(null);
  expect(rejoined.appliedIndex).to.be.at.least(commitIndex);
  expect(rejoined.leaderId).to.equal(leader);
  expect(run.cluster.views[id].running, 'the member process never stopped').to.equal(true);
  expect(run.said(id, 'member stopped'), 'no FATAL record').to.equal(false);
};

describe('member: a full disk (real processes, real ENOSPC)', function () {
  this.timeout(START_BOUND_MS + 6 * FAILOVER_BOUND_MS);
  let base: string;
  let mounts: string[] = [];
  let run: Running | null = null;

  beforeEach(async function () {
    base = mkdtempSync(join(tmpdir(), 'chorus-disk-full-'));
    mounts = [];
    for (let id = 0; id < MEMBERS; id++) {
      const dir = join(base, 'data', `member-${id}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
      } catch {
        this.skip(); // needs root (CAP_SYS_ADMIN); spec/persistence/disk-full.spec.ts covers the store alone
      }
      mounts.push(dir);
    }
    const records = new Map<number, string[]>();
    const cluster = await LocalCluster.start({
      members: MEMBERS,
      dir: base,
      removeOnClose: false,
      onRecord: (id, record) => {
        const list = records.get(id) ?? [];
        list.push(String(record.msg ?? ''));
        records.set(id, list);
      },
    });
    await cluster.waitForLeader(START_BOUND_MS);
    const client = await ChorusClient.connect({
      endpoints: cluster.endpoints(),
      commandTimeoutMs: FAILOVER_BOUND_MS,
    });
    run = {
      cluster,
      client,
      records,
      status: async (id) =>
        (await adminRequest(cluster.memberDir(id), { command: 'status' })) as MemberStatus,
      said: (id, prefix) => (records.get(id) ?? []).some((msg) => msg.startsWith(prefix)),
    };
    expect(await kv(client, { op: 'put', key: 'before', value: '1' })).to.deep.include({ ok: true });
  });

  afterEach(async () => {
    await run?.client.close();
    await run?.cluster.close();
    run = null;
    for (const dir of mounts) execFileSync('umount', [dir], { stdio: 'ignore' });
    rmSync(base, { recursive: true, force: true });
  });

  it('D1: the leader steps down instead of exiting, the others serve, and it rejoins once space returns', async () => {
    const r = run as Running;
    const leader = r.cluster.leader() as number;
    const ballast = join(r.cluster.memberDir(leader), 'ballast');
    fillUp(ballast);
    // Until one of the leader's appends no longer fits (LMDB first reuses the free pages its file has);
    // the writes after the failure are acknowledged through the others' new leader.
    await writeUntilFenced(r, leader);
    const fenced = await r.status(leader);
    expect(fenced.storageFailure).to.match(/DISK_FULL/);
    expect(fenced.role).to.equal('FOLLOWER');
    expect(r.cluster.views[leader].running, 'the member process is still running').to.equal(true);
    const newLeader = await r.cluster.waitForLeader(FAILOVER_BOUND_MS);
    expect(newLeader).to.not.equal(leader);
    expect(await kv(r.client, { op: 'put', key: 'after', value: '3' })).to.deep.include({ ok: true });
    rmSync(ballast); // the operator frees space
    await expectRejoined(r, leader, newLeader);
  });

  it('D2: a follower out of space steps out, the leader and the other follower go on, and it catches up once space returns', async () => {
    const r = run as Running;
    const leader = r.cluster.leader() as number;
    const { term } = await r.status(leader);
    const follower = (leader + 1) % MEMBERS;
    const ballast = join(r.cluster.memberDir(follower), 'ballast');
    fillUp(ballast);
    await writeUntilFenced(r, follower);
    expect((await r.status(follower)).storageFailure).to.match(/DISK_FULL/);
    expect(await kv(r.client, { op: 'put', key: 'after', value: '3' })).to.deep.include({ ok: true });
    const still = await r.status(leader);
    expect([still.role, still.term], 'the same leader in the same term').to.deep.equal(['LEADER', term]);
    rmSync(ballast);
    await expectRejoined(r, follower, leader);
  });
});
