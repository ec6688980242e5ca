// Disk full at the storage level (D1 on a leader, D2 on a follower: the store's behaviour is the same).
// An append that does not fit fails with DISK_FULL naming the member directory, nothing already flushed
// is harmed, and appends work again once space returns — both for the configured map size and for a
// real ENOSPC from a small tmpfs (run when this process may mount one, i.e. as root on Linux).

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { LogEntry } from '../../actors/log/log-entry.ts';
import {
  CONSENSUS_MODULE_SERVICE_ID,
  type MemberStore,
  openMemberStore,
  StorageError,
} from '../../persistence/index.ts';
import { cleanup, entries, plain, tempDir } from './helpers.ts';

/** Append batches of `batch` entries until one fails; returns the last resolved index and the error. */
const fillUntilFull = async (
  store: MemberStore,
  size: number,
  batch = 32,
): Promise<{ acked: number; error: unknown }> => {
  let acked = store.log.lastIndex;
  for (let round = 0; round < 10_000; round++) {
    const from = store.log.lastIndex + 1;
    try {
      await store.log.append(entries(from, from + batch - 1, 1, size));
      acked = from + batch - 1;
    } catch (error) {
      return { acked, error };
    }
  }
  throw new Error('the store never filled up');
};

/**
 * Like fillUntilFull, with `depth` appends in flight (so a group fails while the one before it is still
 * flushing). Every promise must settle; returns the highest resolved index and the first error.
 */
const fillPipelined = async (
  store: MemberStore,
  size: number,
  depth: number,
): Promise<{ acked: number; error: unknown }> => {
  let acked = store.log.lastIndex;
  let failure: unknown;
  const inFlight: Promise<void>[] = [];
  for (let round = 0; round < 10_000 && failure === undefined; round++) {
    const from = store.log.lastIndex + 1;
    const to = from + 15;
    inFlight.push(
      store.log.append(entries(from, to, 1, size)).then(
        () => {
          acked = Math.max(acked, to);
        },
        (error: unknown) => {
          failure ??= error;
        },
      ),
    );
    if (inFlight.length >= depth) await inFlight.shift();
  }
  await Promise.all(inFlight);
  return { acked, error: failure };
};

const expectIntact = (store: MemberStore, from: number, to: number, size: number): void => {
  const expected: LogEntry[] = entries(from, to, 1, size);
  expect(store.log.read(from, to).map(plain)).to.deep.equal(expected.map(plain));
};

describe('persistence: disk full', function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(() => {
    dir = tempDir('full');
  });
  afterEach(() => cleanup(dir));

  it('D1/D2: past mapSizeBytes an append fails with DISK_FULL, flushed entries are untouched, and appends resume after a purge or a larger map', async () => {
    let store = await openMemberStore(dir, { mapSizeBytes: 1024 * 1024 });
    try {
      const { acked, error } = await fillUntilFull(store, 1000);
      expect(acked).to.be.greaterThan(100);
      expect(error).to.be.instanceOf(StorageError);
      const full = error as StorageError;
      expect(full.code).to.equal('DISK_FULL');
      expect(full.dir).to.equal(dir);
      expect(full.index).to.equal(acked + 1);
      expect(full.message)
        .to.match(/mapSizeBytes 1048576/)
        .and.to.match(/nothing was written/);
      // The failed batch is gone from the view; what was flushed is intact.
      expect(store.log.lastIndex).to.equal(acked);
      expectIntact(store, 1, acked, 1000);

      // Appends queued behind the failing one fail with it (they were validated against its tail).
      const first = store.log.append(entries(acked + 1, acked + 64, 1, 1000));
      const second = store.log.append(entries(acked + 65, acked + 65, 1, 1000));
      const results = await Promise.allSettled([first, second]);
      expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
      expect(store.log.lastIndex).to.equal(acked);

      // Space returns by compaction: snapshot, record it, purge the log before it.
      const cm = await store.snapshots.save(
        { serviceId: CONSENSUS_MODULE_SERVICE_ID, logIndex: acked, term: 1, timestamp: 0 },
        Buffer.from('cm'),
      );
      await store.recordingLog.appendSnapshotSet({
        term: 1,
        logIndex: acked,
        timestamp: 0,
        snapshots: [{ serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: cm.snapshotId }],
      });
      await store.log.purgeTo(acked);
      await store.log.append(entries(acked + 1, acked + 32, 1, 1000));
      expect(store.log.lastIndex).to.equal(acked + 32);
    } finally {
      await store.close();
    }

    // Space returns by a larger map: the same member directory, reopened.
    store = await openMemberStore(dir, { mapSizeBytes: 1024 * 1024 });
    try {
      const { acked } = await fillUntilFull(store, 1000);
      await store.close();
      store = await openMemberStore(dir, { mapSizeBytes: 4 * 1024 * 1024 });
      expect(store.log.lastIndex).to.equal(acked);
      await store.log.append(entries(acked + 1, acked + 200, 1, 1000));
      expectIntact(store, acked + 1, acked + 200, 1000);
      expect(store.scan().ok).to.equal(true);
    } finally {
      await store.close();
    }
  });

  it('D1/D2: a real ENOSPC (4 MiB tmpfs) fails the append with DISK_FULL, and appends resume once space is freed', async function () {
    const mountPoint = join(dir, 'tmpfs');
    mkdirSync(mountPoint);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      this.skip(); // needs root (CAP_SYS_ADMIN); the map-size test above covers the logic
    }
    const memberDir = join(mountPoint, 'member');
    const ballast = join(mountPoint, 'ballast');
    try {
      writeFileSync(ballast, Buffer.alloc(2 * 1024 * 1024));
      let store = await openMemberStore(memberDir);
      let acked: number;
      // lmdb-js logs the failed commit with console.error; the assertions below cover it.
      const consoleError = console.error;
      console.error = () => {};
      try {
        const filled = await fillPipelined(store, 512, 3);
        acked = filled.acked;
        expect(filled.error).to.be.instanceOf(StorageError);
        expect((filled.error as StorageError).code).to.equal('DISK_FULL');
        expect((filled.error as StorageError).message)
          .to.match(/disk is full/)
          .and.to.contain(memberDir);
        expect(store.log.lastIndex).to.equal(acked);
        expect(store.log.durableIndex).to.equal(acked);
        expectIntact(store, 1, acked, 512);
        rmSync(ballast); // the operator frees space
        await store.log.append(entries(acked + 1, acked + 64, 1, 512));
      } finally {
        console.error = consoleError;
        await store.close();
      }
      store = await openMemberStore(memberDir);
      try {
        expect(store.log.lastIndex).to.equal(acked + 64);
        expectIntact(store, 1, acked + 64, 512);
      } finally {
        await store.close();
      }
    } finally {
      execFileSync('umount', [mountPoint], { stdio: 'ignore' });
    }
  });
});
