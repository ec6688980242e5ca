// Snapshot data, chunked into LMDB. A snapshot becomes visible only once complete: its chunks are
// written first, and its metadata record (length, chunk count, CRC32C of the whole) is written last, in a
// durable transaction. Chunks without metadata (a writer killed mid-way) are invisible and removed at
// open. Every chunk carries its own CRC32C too, so a damaged snapshot is reported down to the chunk (D3).
//
// Chunk record (little-endian): u32 chunk number, u32 data length, data, u32 CRC32C over all before it.

import { crc32c } from '@node-rs/crc32';
import type { Database, RootDatabase } from 'lmdb';
import { commitBatch, durableBatch } from './durable.ts';
import { StorageError } from './errors.ts';
import { decodeChecked, encodeChecked, hex } from './record-codec.ts';

/** What a snapshot is of: one service (or the consensus module) at one log position. */
export interface SnapshotDescriptor {
  /** The service id; CONSENSUS_MODULE_SERVICE_ID for the consensus module's own state. */
  readonly serviceId: number;
  /** The log index the snapshot includes everything up to. */
  readonly logIndex: number;
  /** The term of the entry at `logIndex`. */
  readonly term: number;
  /** Cluster time at `logIndex`, ms. */
  readonly timestamp: number;
}

export interface SnapshotInfo extends SnapshotDescriptor {
  readonly snapshotId: number;
  readonly length: number;
  readonly chunkCount: number;
  readonly crc32c: number;
}

/** The service id the consensus module's snapshot is recorded under (as Aeron does). */
export const CONSENSUS_MODULE_SERVICE_ID = -1;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

export interface SnapshotStoreParts {
  readonly dir: string;
  readonly env: RootDatabase;
  /** snapshotId -> checked SnapshotInfo */
  readonly metaDb: Database<Buffer, number>;
  /** [snapshotId, chunk] -> chunk record */
  readonly chunkDb: Database<Buffer, [number, number]>;
  readonly checkSpace: (bytes: number, doing: string) => void;
  readonly chunkBytes?: number;
}

const CHUNK_OVERHEAD = 12;

const encodeChunk = (chunk: number, data: Uint8Array): Buffer => {
  const record = Buffer.allocUnsafe(data.length + CHUNK_OVERHEAD);
  record.writeUInt32LE(chunk, 0);
  record.writeUInt32LE(data.length, 4);
  record.set(data, 8);
  record.writeUInt32LE(crc32c(record.subarray(0, 8 + data.length)), 8 + data.length);
  return record;
};

/** The chunk's data, or a sentence saying what is wrong with it. */
const decodeChunk = (record: Buffer | undefined, chunk: number): { data?: Buffer; problem?: string } => {
  if (record === undefined) return { problem: 'the chunk is missing' };
  if (record.length < CHUNK_OVERHEAD) return { problem: `the chunk record is only ${record.length} bytes` };
  const length = record.readUInt32LE(4);
  if (length + CHUNK_OVERHEAD !== record.length) {
    return {
      problem: `the chunk header says ${length} bytes but it holds ${record.length - CHUNK_OVERHEAD}`,
    };
  }
  const stored = record.readUInt32LE(8 + length);
  const actual = crc32c(record.subarray(0, 8 + length));
  if (stored !== actual)
    return { problem: `chunk CRC32C mismatch (stored ${hex(stored)}, computed ${hex(actual)})` };
  if (record.readUInt32LE(0) !== chunk)
    return { problem: `the chunk says it is number ${record.readUInt32LE(0)}` };
  return { data: record.subarray(8, 8 + length) };
};

const isInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value);

const describeInvalidInfo = (info: SnapshotInfo | undefined): string | undefined => {
  if (info === null || typeof info !== 'object') return 'not an object';
  for (const field of [
    'snapshotId',
    'serviceId',
    'logIndex',
    'term',
    'length',
    'chunkCount',
    'crc32c',
  ] as const) {
    if (!isInteger(info[field])) return `field ${field} is ${String(info[field])}`;
  }
  return undefined;
};

/** Writes one snapshot. Nothing is visible until complete() resolves. */
export class SnapshotWriter {
  private chunk = 0;
  private length = 0;
  private crc = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly commits: Promise<void>[] = [];
  private done = false;

  constructor(
    private readonly store: SnapshotStore,
    readonly snapshotId: number,
    readonly descriptor: SnapshotDescriptor,
    private readonly chunkBytes: number,
  ) {}

  /** Add data. Full chunks are committed in the background; write() never waits. */
  write(data: Uint8Array): void {
    if (this.done)
      throw this.store.error('INVALID_ARGUMENT', `snapshot ${this.snapshotId}: write after complete/abort`);
    if (!(data instanceof Uint8Array)) {
      throw this.store.error('INVALID_ARGUMENT', `snapshot ${this.snapshotId}: write() takes a Uint8Array`);
    }
    this.crc = crc32c(data, this.crc);
    this.length += data.length;
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(this.chunkBytes - this.pendingBytes, data.length - offset);
      this.pending.push(Buffer.from(data.subarray(offset, offset + take)));
      this.pendingBytes += take;
      offset += take;
      if (this.pendingBytes === this.chunkBytes) this.flushChunk();
    }
  }

  /** Write the last chunk and the metadata; resolves once the whole snapshot is durable and visible. */
  async complete(): Promise<SnapshotInfo> {
    if (this.done)
      throw this.store.error('INVALID_ARGUMENT', `snapshot ${this.snapshotId}: already completed or aborted`);
    if (this.pendingBytes > 0 || this.chunk === 0) this.flushChunk();
    this.done = true;
    const info: SnapshotInfo = {
      ...this.descriptor,
      snapshotId: this.snapshotId,
      length: this.length,
      chunkCount: this.chunk,
      crc32c: this.crc >>> 0,
    };
    try {
      await Promise.all(this.commits);
      await this.store.publish(info);
    } catch (error) {
      await this.store.removeChunks(this.snapshotId).catch(() => {});
      throw error;
    }
    return info;
  }

  /** Drop everything written so far. */
  async abort(): Promise<void> {
    this.done = true;
    await Promise.allSettled(this.commits);
    await this.store.removeChunks(this.snapshotId);
  }

  private flushChunk(): void {
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const record = encodeChunk(this.chunk, data);
    const key: [number, number] = [this.snapshotId, this.chunk];
    this.pending = [];
    this.pendingBytes = 0;
    this.chunk++;
    const commit = this.store.putChunk(key, record);
    commit.catch(() => {}); // observed in complete()/abort()
    this.commits.push(commit);
  }
}

export class SnapshotStore {
  readonly dir: string;
  private readonly env: RootDatabase;
  private readonly metaDb: Database<Buffer, number>;
  private readonly chunkDb: Database<Buffer, [number, number]>;
  private readonly checkSpace: SnapshotStoreParts['checkSpace'];
  private readonly chunkBytes: number;
  private nextId: number;

  constructor(parts: SnapshotStoreParts) {
    this.dir = parts.dir;
    this.env = parts.env;
    this.metaDb = parts.metaDb;
    this.chunkDb = parts.chunkDb;
    this.checkSpace = parts.checkSpace;
    this.chunkBytes = parts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    let maxId = 0;
    for (const key of this.metaDb.getKeys({ reverse: true, limit: 1 })) maxId = Math.max(maxId, key);
    for (const key of this.chunkDb.getKeys({ reverse: true, limit: 1 })) maxId = Math.max(maxId, key[0]);
    this.nextId = maxId + 1;
  }

  /** Start writing a snapshot. */
  begin(descriptor: SnapshotDescriptor): SnapshotWriter {
    for (const field of ['serviceId', 'logIndex', 'term', 'timestamp'] as const) {
      if (!isInteger(descriptor?.[field])) {
        throw this.error(
          'INVALID_ARGUMENT',
          `snapshots.begin: ${field} must be an integer, got ${String(descriptor?.[field])}`,
        );
      }
    }
    return new SnapshotWriter(this, this.nextId++, { ...descriptor }, this.chunkBytes);
  }

  /** Write a whole snapshot held in memory; resolves once durable and visible. */
  async save(descriptor: SnapshotDescriptor, data: Uint8Array): Promise<SnapshotInfo> {
    const writer = this.begin(descriptor);
    try {
      writer.write(data);
    } catch (error) {
      await writer.abort();
      throw error;
    }
    return writer.complete();
  }

  /** Complete snapshots, oldest first. Damaged metadata is skipped here and reported by the scan. */
  list(): SnapshotInfo[] {
    const result: SnapshotInfo[] = [];
    for (const { key, value } of this.metaDb.getRange({})) {
      const { value: info, problem } = decodeChecked<SnapshotInfo>(value);
      if (problem === undefined && describeInvalidInfo(info) === undefined && info!.snapshotId === key)
        result.push(info!);
    }
    return result;
  }

  /** The metadata of one snapshot; undefined if there is none; CORRUPT_SNAPSHOT if it is damaged. */
  info(snapshotId: number): SnapshotInfo | undefined {
    const raw = this.metaDb.get(snapshotId);
    if (raw === undefined) return undefined;
    const { value, problem } = decodeChecked<SnapshotInfo>(raw);
    const reason =
      problem ?? describeInvalidInfo(value) ?? (value!.snapshotId !== snapshotId ? 'wrong id' : undefined);
    if (reason !== undefined) {
      throw this.error(
        'CORRUPT_SNAPSHOT',
        `snapshot ${snapshotId} metadata is damaged: ${reason}`,
        snapshotId,
      );
    }
    return value;
  }

  /** The snapshot's data, every chunk and the whole checked. Throws CORRUPT_SNAPSHOT (never serves it). */
  load(snapshotId: number): Buffer {
    const parts: Buffer[] = [];
    this.walk(snapshotId, (data) => parts.push(data));
    return Buffer.concat(parts);
  }

  /** Check a snapshot without keeping its data; undefined if intact, else what failed. */
  verify(snapshotId: number): StorageError | undefined {
    try {
      this.walk(snapshotId, () => {});
      return undefined;
    } catch (error) {
      if (error instanceof StorageError) return error;
      throw error;
    }
  }

  /** Delete one snapshot (metadata first, so it stops being visible before its chunks go). Durable. */
  async delete(snapshotId: number): Promise<void> {
    const info = this.metaDb.get(snapshotId);
    await durableBatch(this.env, this.dir, `deleting snapshot ${snapshotId}`, () => {
      if (info !== undefined) this.metaDb.remove(snapshotId);
      for (const key of this.chunkDb.getKeys({ start: [snapshotId, 0], end: [snapshotId + 1, 0] })) {
        this.chunkDb.remove(key);
      }
    });
  }

  /**
   * Keep the newest `count` snapshots of each service (by log index), delete the rest, except any id
   * in `protect` (the recording log's current recovery set). Returns the deleted ids.
   */
  async keepLast(count: number, protect: ReadonlySet<number> = new Set()): Promise<number[]> {
    if (!Number.isSafeInteger(count) || count < 1) {
      throw this.error('INVALID_ARGUMENT', `snapshots.keepLast(${String(count)}): keep at least 1 snapshot`);
    }
    const byService = new Map<number, SnapshotInfo[]>();
    for (const info of this.list()) {
      const list = byService.get(info.serviceId) ?? [];
      list.push(info);
      byService.set(info.serviceId, list);
    }
    const doomed: number[] = [];
    for (const list of byService.values()) {
      list.sort((a, b) => b.logIndex - a.logIndex || b.snapshotId - a.snapshotId);
      for (const info of list.slice(count)) if (!protect.has(info.snapshotId)) doomed.push(info.snapshotId);
    }
    for (const id of doomed) await this.delete(id);
    return doomed.sort((a, b) => a - b);
  }

  /** Remove chunks that no metadata refers to (a writer killed before complete). Returns how many ids. */
  async removeOrphans(): Promise<number[]> {
    const orphans = new Set<number>();
    for (const key of this.chunkDb.getKeys({})) {
      if (!this.metaDb.doesExist(key[0])) orphans.add(key[0]);
    }
    for (const id of orphans) await this.removeChunks(id);
    return [...orphans];
  }

  /** Snapshot ids whose metadata fails its checksum (for the start-up scan). */
  damagedMetadata(): { snapshotId: number; problem: string }[] {
    const damaged: { snapshotId: number; problem: string }[] = [];
    for (const { key, value } of this.metaDb.getRange({})) {
      const { value: info, problem } = decodeChecked<SnapshotInfo>(value);
      const reason =
        problem ?? describeInvalidInfo(info) ?? (info!.snapshotId !== key ? 'wrong id' : undefined);
      if (reason !== undefined) damaged.push({ snapshotId: key, problem: reason });
    }
    return damaged;
  }

  // --- used by SnapshotWriter ---------------------------------------------------------------------

  /** @internal */
  putChunk(key: [number, number], record: Buffer): Promise<void> {
    try {
      this.checkSpace(record.length, `writing snapshot ${key[0]} chunk ${key[1]}`);
    } catch (error) {
      return Promise.reject(error);
    }
    return commitBatch(this.env, this.dir, `writing snapshot ${key[0]} chunk ${key[1]}`, () => {
      this.chunkDb.put(key, record);
    }).then(() => undefined); // durability comes from the metadata write in publish()
  }

  /** @internal */
  publish(info: SnapshotInfo): Promise<void> {
    return durableBatch(this.env, this.dir, `completing snapshot ${info.snapshotId}`, () => {
      this.metaDb.put(info.snapshotId, encodeChecked(info));
    });
  }

  /** @internal */
  removeChunks(snapshotId: number): Promise<void> {
    return durableBatch(this.env, this.dir, `removing chunks of snapshot ${snapshotId}`, () => {
      for (const key of this.chunkDb.getKeys({ start: [snapshotId, 0], end: [snapshotId + 1, 0] })) {
        this.chunkDb.remove(key);
      }
    });
  }

  /** @internal */
  error(
    code: 'INVALID_ARGUMENT' | 'CORRUPT_SNAPSHOT',
    message: string,
    snapshotId?: number,
    chunk?: number,
  ): StorageError {
    return new StorageError(code, message, { dir: this.dir, snapshotId, chunk });
  }

  private walk(snapshotId: number, onData: (data: Buffer) => void): void {
    const info = this.info(snapshotId);
    if (info === undefined)
      throw this.error('INVALID_ARGUMENT', `snapshot ${snapshotId} does not exist`, snapshotId);
    let crc = 0;
    let length = 0;
    let chunk = 0;
    const fail = (problem: string, at?: number): never => {
      throw this.error(
        'CORRUPT_SNAPSHOT',
        `snapshot ${snapshotId} (service ${info.serviceId}, log index ${info.logIndex}) is not served: ${problem}` +
          (at === undefined ? '' : ` (chunk ${at} of ${info.chunkCount})`),
        snapshotId,
        at,
      );
    };
    for (const { key, value } of this.chunkDb.getRange({
      start: [snapshotId, 0],
      end: [snapshotId, info.chunkCount],
    })) {
      if (key[1] !== chunk) fail('the chunk is missing', chunk);
      const { data, problem } = decodeChunk(value, chunk);
      if (problem !== undefined) fail(problem, chunk);
      crc = crc32c(data!, crc);
      length += data!.length;
      onData(data!);
      chunk++;
    }
    if (chunk !== info.chunkCount) fail('the chunk is missing', chunk);
    if (length !== info.length) fail(`it holds ${length} bytes, its metadata says ${info.length}`);
    if (crc >>> 0 !== info.crc32c) fail(`CRC32C mismatch (stored ${hex(info.crc32c)}, computed ${hex(crc)})`);
  }
}
