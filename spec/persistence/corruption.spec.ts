// Corruption detection (D3): flip bytes in the LMDB data file and check that the start-up scan reports
// the member directory, the index or snapshot and what failed, that reads refuse to serve the damaged
// data, and that the member can be repaired from a leader's copy.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';
import {
  CONSENSUS_MODULE_SERVICE_ID,
  openMemberStore,
  StartupScanError,
  StorageError,
} from '../../persistence/index.ts';
import { cleanup, entries, tempDir } from './helpers.ts';

/** Flip one bit at `offset` from every occurrence of `marker` in the data file (stale page copies too). */
const flipInDataFile = (dir: string, marker: Buffer, offset = 0): number => {
  const path = join(dir, 'data.mdb');
  const data = readFileSync(path);
  let count = 0;
  for (let at = data.indexOf(marker); at !== -1; at = data.indexOf(marker, at + 1)) {
    data[at + offset] ^= 0x10;
    count++;
  }
  writeFileSync(path, data);
  return count;
};

const markedEntry = (index: number, term: number): LogEntry => ({
  index,
  term,
  timestamp: 1_700_000_000_000 + index,
  kind: EntryKind.SESSION_MESSAGE,
  payload: Buffer.from(`chorus-corruption-marker-${index}-${'x'.repeat(40)}`),
});

describe('persistence: corruption detection', () => {
  let dir: string;

  beforeEach(() => {
    dir = tempDir('corrupt');
  });
  afterEach(() => cleanup(dir));

  for (const [where, offset] of [
    ['payload', 5],
    ['header (term field)', -16],
    ['checksum', 64 + 2],
  ] as const) {
    it(`D3: a byte flipped in an entry's ${where} is reported by the start-up scan and never served`, async () => {
      let store = await openMemberStore(dir);
      await store.log.append([...entries(1, 41, 1), markedEntry(42, 1), ...entries(43, 50, 1)]);
      await store.close();
      const payloadLength = markedEntry(42, 1).payload.length;
      const flipAt = offset === 66 ? payloadLength : offset; // the CRC sits right after the payload
      expect(flipInDataFile(dir, Buffer.from('chorus-corruption-marker-42-'), flipAt)).to.be.at.least(1);

      let refused: unknown;
      try {
        store = await openMemberStore(dir);
        await store.close();
      } catch (error) {
        refused = error;
      }
      expect(refused).to.be.instanceOf(StartupScanError);
      const scanError = refused as StartupScanError;
      expect(scanError.code).to.equal('CORRUPT_ENTRY');
      expect(scanError.index).to.equal(42);
      expect(scanError.message).to.contain(dir).and.to.contain('log entry 42');
      expect(scanError.report.problemCount).to.equal(1);

      // Opened only to report: reads of entry 42 refuse, its neighbours are fine.
      store = await openMemberStore(dir, { startupScan: 'report' });
      try {
        expect(store.startupReport?.problems.map((p) => p.index)).to.deep.equal([42]);
        expect(store.log.entry(41)?.index).to.equal(41);
        expect(() => store.log.entry(42))
          .to.throw(StorageError)
          .that.satisfies((e: StorageError) => e.code === 'CORRUPT_ENTRY' && e.index === 42 && e.dir === dir);
        expect(() => store.log.read(40, 45)).to.throw(/log entry 42 is not served/);
        // Repair: drop the damaged tail and take the leader's copy again.
        await store.log.truncateFrom(42);
        await store.log.append([markedEntry(42, 1), ...entries(43, 50, 1)]);
        expect(store.scan().ok).to.equal(true);
      } finally {
        await store.close();
      }
    });
  }

  it('D3: a member with a damaged log is rebuilt by installing the leader snapshot over it', async () => {
    let store = await openMemberStore(dir);
    await store.log.append([...entries(1, 41, 1), markedEntry(42, 1), ...entries(43, 50, 1)]);
    await store.close();
    flipInDataFile(dir, Buffer.from('chorus-corruption-marker-42-'), 3);
    store = await openMemberStore(dir, { startupScan: 'report' });
    try {
      expect(store.startupReport?.ok).to.equal(false);
      const cm = await store.snapshots.save(
        { serviceId: CONSENSUS_MODULE_SERVICE_ID, logIndex: 42, term: 2, timestamp: 0 },
        Buffer.from('leader state at 42'),
      );
      await store.recordingLog.appendSnapshotSet({
        term: 2,
        logIndex: 42,
        timestamp: 0,
        snapshots: [{ serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: cm.snapshotId }],
      });
      await store.log.purgeTo(42); // the damaged entry cannot match: the whole log goes
      await store.log.append(entries(43, 45, 2));
      expect(store.scan().ok).to.equal(true);
      expect(store.recoveryPlan().replayFrom).to.equal(43);
    } finally {
      await store.close();
    }
    await (await openMemberStore(dir)).close(); // the start-up scan (refuse mode) passes again
  });

  it('D3: a byte flipped in snapshot data is reported with the snapshot and chunk, never loaded, and recovery falls back to the previous set', async () => {
    let store = await openMemberStore(dir, { snapshotChunkBytes: 256 });
    await store.log.append(entries(1, 20, 1));
    const takeSet = async (logIndex: number, fill: string) => {
      const data = Buffer.from(`${fill}-`.repeat(100));
      const cm = await store.snapshots.save(
        { serviceId: CONSENSUS_MODULE_SERVICE_ID, logIndex, term: 1, timestamp: 0 },
        data,
      );
      const svc = await store.snapshots.save({ serviceId: 0, logIndex, term: 1, timestamp: 0 }, data);
      await store.recordingLog.appendSnapshotSet({
        term: 1,
        logIndex,
        timestamp: 0,
        snapshots: [
          { serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: cm.snapshotId },
          { serviceId: 0, snapshotId: svc.snapshotId },
        ],
      });
      return svc;
    };
    await takeSet(10, 'older-snapshot');
    const damaged = await takeSet(15, 'newer-snapshot-service');
    await store.close();
    // Flip a bit in every chunk of the newer service snapshot (the older set holds different text).
    expect(
      flipInDataFile(dir, Buffer.from('newer-snapshot-service-newer-snapshot-service-'), 7),
    ).to.be.at.least(1);

    const refused = await openMemberStore(dir).then(
      async (s) => {
        await s.close();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(refused).to.be.instanceOf(StartupScanError);
    expect((refused as StartupScanError).code).to.equal('CORRUPT_SNAPSHOT');

    store = await openMemberStore(dir, { startupScan: 'report' });
    try {
      const problems = store.startupReport!.problems;
      expect(problems.map((p) => p.snapshotId)).to.include(damaged.snapshotId);
      expect(problems.every((p) => p.code === 'CORRUPT_SNAPSHOT' && p.dir === dir)).to.equal(true);
      expect(problems.some((p) => p.chunk !== undefined && /chunk CRC32C mismatch/.test(p.message))).to.equal(
        true,
      );
      expect(() => store.snapshots.load(damaged.snapshotId))
        .to.throw(StorageError)
        .with.property('code', 'CORRUPT_SNAPSHOT');
      const plan = store.recoveryPlan();
      expect(plan.snapshotSet?.logIndex).to.equal(10);
      expect(plan.replayFrom).to.equal(11);
      expect(plan.skipped.map((s) => s.logIndex)).to.deep.equal([15]);
      expect(store.snapshots.load(plan.snapshots[1].entry.snapshotId).toString()).to.match(
        /^older-snapshot-/,
      );
    } finally {
      await store.close();
    }
  });

  it('D3: a damaged node-state record is refused rather than guessed', async () => {
    let store = await openMemberStore(dir);
    await store.nodeState.save({ currentTerm: 7, candidateTermId: 7, votedFor: 2 });
    await store.close();
    expect(flipInDataFile(dir, Buffer.from('candidateTermId'), 3)).to.be.at.least(1);
    store = await openMemberStore(dir, { startupScan: 'report' });
    try {
      expect(store.startupReport?.problems.map((p) => p.code)).to.deep.equal(['CORRUPT_RECORD']);
      expect(() => store.nodeState.load()).to.throw(/node state record .* is damaged/);
    } finally {
      await store.close();
    }
  });
});
