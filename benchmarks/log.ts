// Benchmark: durable appends to the LMDB log store against plain lmdb-js doing the same durable writes
// in the same run, and the start-up scan of a large log.
//
//   npx chorus bench log --json
//   node --import tsx -e "const m = await import('./benchmarks/log.ts'); console.log(JSON.stringify(await m.run({})))"
//
// Options: sliceMs (default 250) and pairs (default 8): raw and store appends alternate in short slices
// so both see the same background load on a shared machine; scanEntries (default 1000000).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { open } from 'lmdb';
import { EntryKind, type LogEntry } from '../actors/log/log-entry.ts';
import { Random } from '../machines/random.ts';
import { openMemberStore } from '../persistence/member-store.ts';
import { type BenchOptions, type BenchResult, opsPerSecond, percentile, round } from './harness.ts';

export const describe =
  'Durable log appends (batches of 1, 16, 256 entries of 256 bytes) vs plain lmdb-js, and the start-up scan rate';

const PAYLOAD_BYTES = 256;
const BATCH_SIZES = [1, 16, 256] as const;

const payloads = (count: number, seed: number): Buffer[] => {
  const random = new Random(seed);
  return Array.from({ length: count }, () => {
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    for (let i = 0; i < PAYLOAD_BYTES; i += 4) {
      const word = random.uint32();
      payload[i] = word & 0xff;
      payload[i + 1] = (word >>> 8) & 0xff;
      payload[i + 2] = (word >>> 16) & 0xff;
      payload[i + 3] = word >>> 24;
    }
    return payload;
  });
};

/** One side of the comparison: appends `batch` entries durably per call. */
interface Appender {
  append(): Promise<unknown>;
  close(): Promise<void>;
}

/** The member store: one log append of `batch` entries, resolved once flushed. */
const storeAppender = async (dir: string, batch: number, data: Buffer[]): Promise<Appender> => {
  const store = await openMemberStore(dir, { startupScan: 'off' });
  let index = store.log.lastIndex;
  return {
    append: () => {
      const group: LogEntry[] = new Array(batch);
      for (let i = 0; i < batch; i++) {
        index++;
        group[i] = {
          index,
          term: 1,
          timestamp: 1_700_000_000_000 + index,
          kind: EntryKind.SESSION_MESSAGE,
          payload: data[index % data.length],
        };
      }
      return store.log.append(group);
    },
    close: () => store.close(),
  };
};

/** Plain lmdb-js doing the same durable writes: one batch transaction, awaited, then `flushed`. */
const rawAppender = (dir: string, batch: number, data: Buffer[]): Appender => {
  const env = open({ path: dir, mapSize: 4 * 1024 ** 3 });
  const db = env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
  let index = 0;
  return {
    append: async () => {
      await db.batch(() => {
        for (let i = 0; i < batch; i++) {
          index++;
          db.put(index, data[index % data.length]);
        }
      });
      await env.flushed;
    },
    close: () => env.close(),
  };
};

/**
 * Alternate short slices of raw and store appends, so both sides see the same background load on a
 * shared machine; the ratio is the median of the per-pair ratios.
 */
const compare = async (
  root: string,
  batch: number,
  sliceMs: number,
  pairs: number,
  data: Buffer[],
): Promise<{ store: number; raw: number; ratio: number }> => {
  const store = await storeAppender(join(root, `store-${batch}`), batch, data);
  const raw = rawAppender(join(root, `raw-${batch}`), batch, data);
  try {
    const storeRates: number[] = [];
    const rawRates: number[] = [];
    const ratios: number[] = [];
    for (let pair = 0; pair < pairs; pair++) {
      const rawRate = await opsPerSecond(raw.append, { minMs: sliceMs, opsPerCall: batch });
      const storeRate = await opsPerSecond(store.append, { minMs: sliceMs, opsPerCall: batch });
      rawRates.push(rawRate);
      storeRates.push(storeRate);
      ratios.push(storeRate / rawRate);
    }
    return {
      store: percentile(storeRates, 50),
      raw: percentile(rawRates, 50),
      ratio: percentile(ratios, 50),
    };
  } finally {
    await store.close();
    await raw.close();
  }
};

/** Build a log of `count` entries, then time the start-up scan (every CRC32C, contiguity, terms). */
const measureScan = async (dir: string, count: number, data: Buffer[]): Promise<number> => {
  const store = await openMemberStore(dir, { startupScan: 'off' });
  try {
    const chunk = 8192;
    for (let from = 1; from <= count; from += chunk) {
      const group: LogEntry[] = [];
      for (let index = from; index < from + chunk && index <= count; index++) {
        group.push({
          index,
          term: 1 + Math.floor(index / 100_000),
          timestamp: 1_700_000_000_000 + index,
          kind: EntryKind.SESSION_MESSAGE,
          payload: data[index % data.length],
        });
      }
      await store.log.append(group);
    }
  } finally {
    await store.close();
  }
  const reopened = await openMemberStore(dir, { startupScan: 'off' });
  try {
    const start = performance.now();
    const report = reopened.scan();
    const elapsed = performance.now() - start;
    if (!report.ok || report.entriesChecked !== count) {
      throw new Error(
        `log benchmark: the scan of ${count} entries reported ${JSON.stringify(report.problems[0])}`,
      );
    }
    return (count * 1000) / elapsed;
  } finally {
    await reopened.close();
  }
};

export const run = async (options: BenchOptions = {}): Promise<BenchResult> => {
  const sliceMs = Number(options.sliceMs ?? 250);
  const pairs = Number(options.pairs ?? 8);
  const scanEntries = Number(options.scanEntries ?? 1_000_000);
  const root = mkdtempSync(join(tmpdir(), 'chorus-bench-log-'));
  const data = payloads(1024, 42);
  const result: BenchResult = {
    benchmark: 'log',
    measured:
      `Entries per second appended durably (each batch awaited until fsynced) for batches of ${BATCH_SIZES.join(', ')} ` +
      `entries of ${PAYLOAD_BYTES} bytes, through the member store and through plain lmdb-js (batch + flushed), in ` +
      `${pairs} alternating ${sliceMs} ms slices each (medians); ratioVsRawLmdb is the geometric mean over batch sizes ` +
      `of the median per-slice ratio; scanEntriesPerSec is the start-up scan (CRC32C of every entry) of a ` +
      `${scanEntries}-entry log.`,
  };
  try {
    let logRatio = 0;
    for (const batch of BATCH_SIZES) {
      const { store, raw, ratio } = await compare(root, batch, sliceMs, pairs, data);
      result[`appendsPerSecBatch${batch}`] = round(store);
      result[`rawLmdbAppendsPerSecBatch${batch}`] = round(raw);
      result[`ratioVsRawLmdbBatch${batch}`] = round(ratio);
      logRatio += Math.log(ratio);
    }
    result.ratioVsRawLmdb = round(Math.exp(logRatio / BATCH_SIZES.length));
    if (scanEntries > 0)
      result.scanEntriesPerSec = round(await measureScan(join(root, 'scan'), scanEntries, data));
    return result;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
};
