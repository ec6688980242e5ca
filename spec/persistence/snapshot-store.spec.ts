import { expect } from 'chai';
import { open } from 'lmdb';
import {
  CONSENSUS_MODULE_SERVICE_ID,
  type MemberStore,
  openMemberStore,
  StorageError,
} from '../../persistence/index.ts';
import { cleanup, tempDir } from './helpers.ts';

/** Chunk records of one snapshot, read from the closed member directory with LMDB directly. */
const chunksOnDisk = (dir: string, snapshotId: number): number => {
  const env = open({ path: dir, noSubdir: false, maxDbs: 12, readOnly: true });
  try {
    const chunks = env.openDB<Buffer, [number, number]>({ name: 'snapshot-chunks', encoding: 'binary' });
    return [...chunks.getKeys({ start: [snapshotId, 0], end: [snapshotId + 1, 0] })].length;
  } finally {
    env.close();
  }
};

const bytes = (length: number, seed: number): Buffer => {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (seed * 17 + i * 5) & 0xff;
  return data;
};

describe('persistence: snapshot store', () => {
  let dir: string;
  let store: MemberStore;

  beforeEach(async () => {
    dir = tempDir('snap');
    store = await openMemberStore(dir, { snapshotChunkBytes: 1000 });
  });
  afterEach(async () => {
    await store.close();
    cleanup(dir);
  });

  it('writes chunked data that round-trips, with length, chunk count and CRC32C in its metadata', async () => {
    const writer = store.snapshots.begin({ serviceId: 0, logIndex: 10, term: 2, timestamp: 5 });
    const data = bytes(4321, 1);
    writer.write(data.subarray(0, 1500));
    writer.write(data.subarray(1500));
    const info = await writer.complete();
    expect(info).to.include({ serviceId: 0, logIndex: 10, term: 2, length: 4321, chunkCount: 5 });
    expect(store.snapshots.load(info.snapshotId).equals(data)).to.equal(true);
    expect(store.snapshots.list().map((s) => s.snapshotId)).to.deep.equal([info.snapshotId]);
  });

  it('keeps a snapshot invisible until complete, and removes a dead writer’s chunks at the next open', async () => {
    const writer = store.snapshots.begin({ serviceId: 0, logIndex: 3, term: 1, timestamp: 0 });
    writer.write(bytes(5000, 2)); // five chunks committed in the background, no metadata
    expect(store.snapshots.list()).to.deep.equal([]);
    expect(() => store.snapshots.load(writer.snapshotId)).to.throw(/does not exist/);
    await store.close(); // the writer never completes: as if the process died
    expect(chunksOnDisk(dir, writer.snapshotId), 'the dead writer left its chunks').to.equal(5);
    store = await openMemberStore(dir, { snapshotChunkBytes: 1000 });
    expect(store.snapshots.list()).to.deep.equal([]);
    const next = await store.snapshots.save(
      { serviceId: 0, logIndex: 4, term: 1, timestamp: 0 },
      bytes(10, 3),
    );
    expect(store.snapshots.load(next.snapshotId).equals(bytes(10, 3))).to.equal(true);
    expect(store.scan().ok).to.equal(true);
    await store.close();
    expect(chunksOnDisk(dir, writer.snapshotId), 'orphaned chunks removed at open').to.equal(0);
    expect(chunksOnDisk(dir, next.snapshotId)).to.equal(1);
    store = await openMemberStore(dir, { snapshotChunkBytes: 1000 });
  });

  it('stores an empty snapshot', async () => {
    const info = await store.snapshots.save(
      { serviceId: 1, logIndex: 1, term: 1, timestamp: 0 },
      Buffer.alloc(0),
    );
    expect(info.chunkCount).to.equal(1);
    expect(store.snapshots.load(info.snapshotId).length).to.equal(0);
  });

  it('aborts a writer and deletes snapshots; keepLast keeps the newest N per service and spares protected ids', async () => {
    const aborted = store.snapshots.begin({ serviceId: 0, logIndex: 1, term: 1, timestamp: 0 });
    aborted.write(bytes(2500, 4));
    await aborted.abort();
    const ids: number[] = [];
    for (let logIndex = 1; logIndex <= 4; logIndex++) {
      for (const serviceId of [CONSENSUS_MODULE_SERVICE_ID, 0]) {
        ids.push(
          (await store.snapshots.save({ serviceId, logIndex, term: 1, timestamp: 0 }, bytes(1200, logIndex)))
            .snapshotId,
        );
      }
    }
    const protectedId = ids[0]; // consensus module at log index 1
    const deleted = await store.snapshots.keepLast(2, new Set([protectedId]));
    expect(deleted).to.deep.equal([ids[1], ids[2], ids[3]]);
    expect(store.snapshots.list().map((s) => [s.serviceId, s.logIndex])).to.deep.equal([
      [-1, 1],
      [-1, 3],
      [0, 3],
      [-1, 4],
      [0, 4],
    ]);
    await store.snapshots.delete(ids[7]);
    expect(store.snapshots.list().length).to.equal(4);
    expect(store.scan().ok).to.equal(true);
    expect(() => store.snapshots.begin({ serviceId: 0, logIndex: Number.NaN, term: 1, timestamp: 0 }))
      .to.throw(StorageError)
      .with.property('code', 'INVALID_ARGUMENT');
  });
});
