// D1 at the level the catalogue names (proc): three real member processes, each member directory on its
// own small tmpfs; the leader's file system is filled with a ballast file until the kernel answers ENOSPC.
// The leader's next append fails with DISK_FULL: it must step out of the cluster (no exit, no corruption),
// the others elect, clients carry on through the new leader, and once the ballast is removed the old leader
// rejoins from its own snapshot + log and catches up. Needs root to mount tmpfs; skipped otherwise.

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

describe('member: a full disk on the leader (real processes, real ENOSPC)', function () {
  this.timeout(START_BOUND_MS + 6 * FAILOVER_BOUND_MS);
  let base: string;
  const mounts: string[] = [];
  let cluster: LocalCluster | null = null;
  let client: ChorusClient | null = null;

  before(function () {
    base = mkdtempSync(join(tmpdir(), 'chorus-disk-full-'));
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
  });

  after(async () => {
    await client?.close();
    await cluster?.close();
    for (const dir of mounts) execFileSync('umount', [dir], { stdio: 'ignore' });
    rmSync(base, { recursive: true, force: true });
  });

  it('D1: the leader steps down instead of exiting, the others serve, and it rejoins once space returns', async () => {
    const records = new Map<number, string[]>();
    cluster = await LocalCluster.start({
      members: MEMBERS,
      dir: base,
      removeOnClose: false,
      onRecord: (id, record) => {
        const list = records.get(id) ?? [];
        list.push(String(record.msg ?? ''));
        records.set(id, list);
      },
    });
    const running = cluster;
    const status = async (id: number) =>
      (await adminRequest(running.memberDir(id), { command: 'status' })) as MemberStatus;
    const leader = await running.waitForLeader(START_BOUND_MS);
    client = await ChorusClient.connect({
      endpoints: running.endpoints(),
      commandTimeoutMs: FAILOVER_BOUND_MS,
    });
    expect(await kv(client, { op: 'put', key: 'before', value: '1' })).to.deep.include({ ok: true });

    const ballast = join(running.memberDir(leader), 'ballast');
    fillUp(ballast);
    // Writes until one of the leader's appends no longer fits (LMDB first reuses the free pages its file
    // has); every write is acknowledged, those after the failure through the others' new leader.
    const failed = () =>
      (records.get(leader) ?? []).some((msg) => msg.startsWith('storage failed, out of the cluster'));
    const value = 'x'.repeat(8 * 1024);
    for (let i = 0; i < 2_000 && !failed(); i++) {
      expect(await kv(client, { op: 'put', key: `during-${i}`, value })).to.deep.include({ ok: true });
    }
    expect(failed(), `member ${leader} reports its storage failure`).to.equal(true);
    const fenced = await status(leader);
    expect(fenced.storageFailure).to.match(/DISK_FULL/);
    expect(fenced.role).to.equal('FOLLOWER');
    expect(running.views[leader].running, 'the member process is still running').to.equal(true);
    const newLeader = await running.waitForLeader(FAILOVER_BOUND_MS);
    expect(newLeader).to.not.equal(leader);
    expect(await kv(client, { op: 'put', key: 'after', value: '3' })).to.deep.include({ ok: true });

    rmSync(ballast); // the operator frees space
    await running.until(
      () => (records.get(leader) ?? []).includes('storage works again: rejoining the cluster'),
      `member ${leader} to rejoin`,
      FAILOVER_BOUND_MS,
    );
    const { commitIndex } = await status(newLeader);
    const deadline = Date.now() + FAILOVER_BOUND_MS;
    let rejoined = await status(leader);
    while (rejoined.appliedIndex < commitIndex && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      rejoined = await status(leader);
    }
    expect(rejoined.storageFailure).to.equal(null);
    expect(rejoined.appliedIndex).to.be.at.least(commitIndex);
    expect(rejoined.leaderId).to.equal(newLeader);
    expect(records.get(leader) ?? []).to.not.include.members(['member closed']);
    expect((records.get(leader) ?? []).some((msg) => msg.startsWith('member stopped'))).to.equal(false);
  });
});
