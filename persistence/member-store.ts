// One member's durable state: a single LMDB environment in the member directory, with named databases
// for the log, the log's purge boundary, node state, the recording log, snapshot metadata and snapshot
// chunks. openMemberStore() is the one entry point: it locks the directory (member-dir-lock.ts), runs the
// start-up scan (startup-scan.ts: every checksum) and refuses to open a damaged member unless asked only to
// report (D3, N5, O3). What recovery loads is recovery-plan.ts.

import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';
import { StorageError, toStorageError } from './errors.ts';
import { LogStore } from './log-store.ts';
import { lockMemberDir, unlockMemberDir } from './member-dir-lock.ts';
import { type NodeState, NodeStateStore } from './node-state.ts';
import { RecordingLog } from './recording-log.ts';
import { planRecovery, type RecoveryPlan } from './recovery-plan.ts';
import { SnapshotStore } from './snapshot-store.ts';
import { type ScannedStores, type ScanReport, StartupScanError, scanMember } from './startup-scan.ts';

export interface MemberStoreOptions {
  /**
   * The most the member's data file may hold, in bytes (default 4 GiB). Appends and snapshot writes
   * that would go past it fail with DISK_FULL; purging after a snapshot frees room again.
   */
  readonly mapSizeBytes?: number;
  /**
   * What the start-up scan does: 'refuse' (default) throws a StartupScanError if anything is damaged,
   * 'report' opens anyway and leaves the report in `startupReport` (reads still refuse damaged data),
   * 'off' skips it.
   */
  readonly startupScan?: 'refuse' | 'report' | 'off';
  /** Whether the scan reads every snapshot's data too (default true). */
  readonly scanSnapshots?: boolean;
  /** Snapshot chunk size in bytes (default 64 KiB). */
  readonly snapshotChunkBytes?: number;
}

export interface StorageUsage {
  readonly usedBytes: number;
  readonly mapSizeBytes: number;
}

export interface MemberStatus extends StorageUsage {
  readonly dir: string;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly durableIndex: number;
  readonly nodeState: NodeState;
  /** Log index of the latest valid snapshot set, or null. */
  readonly latestSnapshotIndex: number | null;
}

export const DEFAULT_MAP_SIZE_BYTES = 4 * 1024 ** 3;

interface LmdbStats {
  pageSize: number;
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
  free?: LmdbStats;
  root?: LmdbStats;
}

const pagesOf = (stats: LmdbStats | undefined): number =>
  stats === undefined ? 0 : stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages;

export class MemberStore {
  readonly log: LogStore;
  readonly nodeState: NodeStateStore;
  readonly recordingLog: RecordingLog;
  readonly snapshots: SnapshotStore;
  /** The start-up scan's report (undefined when the scan was off). */
  startupReport: ScanReport | undefined;
  private closing: Promise<void> | undefined;
  /** Live bytes at the last measurement, and bytes written since (see checkSpace). */
  private measuredUsedBytes = Number.POSITIVE_INFINITY;
  private bytesSinceMeasured = 0;

  /** Use openMemberStore(). */
  constructor(
    readonly dir: string,
    /** @internal the LMDB environment, for backup */
    readonly env: RootDatabase,
    private readonly logDb: Database<Buffer, number>,
    private readonly dbs: readonly Database[],
    readonly mapSizeBytes: number,
    parts: {
      metaDb: Database<Buffer, string>;
      nodeStateDb: Database<Buffer, string>;
      recordingDb: Database<Buffer, number>;
      snapshotMetaDb: Database<Buffer, number>;
      snapshotChunkDb: Database<Buffer, [number, number]>;
      snapshotChunkBytes?: number;
    },
  ) {
    const checkSpace = (bytes: number, doing: string, index?: number): void =>
      this.checkSpace(bytes, doing, index);
    this.log = new LogStore({
      dir,
      env,
      logDb,
      metaDb: parts.metaDb,
      checkSpace,
      snapshotTermAt: (index) =>
        this.recordingLog.snapshotSets().find((set) => set.valid && set.logIndex === index)?.term,
    });
    this.nodeState = new NodeStateStore(dir, env, parts.nodeStateDb);
    this.recordingLog = new RecordingLog(dir, env, parts.recordingDb);
    this.snapshots = new SnapshotStore({
      dir,
      env,
      metaDb: parts.snapshotMetaDb,
      chunkDb: parts.snapshotChunkDb,
      checkSpace,
      chunkBytes: parts.snapshotChunkBytes,
    });
  }

  /** A summary for the cluster tool and logs. */
  status(): MemberStatus {
    const latest = this.recordingLog.latestValidSnapshotSet();
    return {
      dir: this.dir,
      firstIndex: this.log.firstIndex,
      lastIndex: this.log.lastIndex,
      lastTerm: this.log.lastTerm,
      durableIndex: this.log.durableIndex,
      nodeState: this.nodeState.load(),
      latestSnapshotIndex: latest?.logIndex ?? null,
      ...this.usage(),
    };
  }

  /** Bytes in live pages (the data file can be larger: freed pages are reused before it grows). */
  usage(): StorageUsage {
    const root = this.env.getStats() as LmdbStats;
    let pages = 2 + pagesOf(root) + pagesOf(root.free);
    for (const db of this.dbs) pages += pagesOf(db.getStats() as LmdbStats);
    return { usedBytes: pages * root.pageSize, mapSizeBytes: this.mapSizeBytes };
  }

  /** The start-up scan over this member's stores (startup-scan.ts). */
  scan(options: { snapshots?: boolean } = {}): ScanReport {
    const scanned: ScannedStores = {
      dir: this.dir,
      log: this.log,
      logDb: this.logDb,
      nodeState: this.nodeState,
      recordingLog: this.recordingLog,
      snapshots: this.snapshots,
    };
    return scanMember(scanned, options);
  }

  /**
   * What recovery loads (recovery-plan.ts). Throws COMPACTED when the log was purged and no usable
   * snapshot covers the gap.
   */
  recoveryPlan(options: { verifySnapshots?: boolean } = {}): RecoveryPlan {
    return planRecovery(this, options);
  }

  /**
   * Keep the newest `keepSets` valid snapshot sets: drop older and invalid sets from the recording log
   * and delete their snapshot data, plus any unrecorded snapshot older than the newest kept set (a set
   * abandoned half-way). Snapshots newer than that may belong to a set being taken and are left alone.
   * Returns the deleted snapshot ids. Purging the log is the caller's decision (after the newest set).
   */
  async pruneSnapshots(keepSets: number): Promise<number[]> {
    if (!Number.isSafeInteger(keepSets) || keepSets < 1) {
      throw new StorageError('INVALID_ARGUMENT', `pruneSnapshots(${String(keepSets)}): keep at least 1 set`, {
        dir: this.dir,
      });
    }
    const removed = await this.recordingLog.removeOldSnapshotEntries(keepSets);
    const kept = this.recordingLog.snapshotSets();
    const referenced = new Set(kept.flatMap((set) => set.snapshots.map((entry) => entry.snapshotId)));
    const newestKept = kept.find((set) => set.valid)?.logIndex ?? -1;
    const doomed = new Set(removed.map((entry) => entry.snapshotId));
    for (const info of this.snapshots.list()) {
      if (!referenced.has(info.snapshotId) && info.logIndex < newestKept) doomed.add(info.snapshotId);
    }
    const deleted = [...doomed].filter((id) => !referenced.has(id)).sort((a, b) => a - b);
    for (const id of deleted) await this.snapshots.delete(id);
    return deleted;
  }

  /** Close the environment once every queued write is durable. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.log.close();
        await this.env.close();
      } finally {
        unlockMemberDir(this.dir);
      }
    })();
    return this.closing;
  }

  private checkSpace(bytes: number, doing: string, index?: number): void {
    // Twice the payload: LMDB's copy-on-write touches new pages for every change, and pages are rarely
    // full. Measuring LMDB's page counts costs a few dozen native calls, so it is done only when the
    // bytes written since the last measurement could have used up the room that measurement left.
    const grown = 2 * (this.bytesSinceMeasured + bytes);
    if (this.measuredUsedBytes + grown <= this.mapSizeBytes) {
      this.bytesSinceMeasured += bytes;
      return;
    }
    const { usedBytes } = this.usage();
    this.measuredUsedBytes = usedBytes;
    this.bytesSinceMeasured = 0;
    if (usedBytes + 2 * bytes > this.mapSizeBytes) {
      throw new StorageError(
        'DISK_FULL',
        `${doing} needs about ${2 * bytes} bytes but ${usedBytes} of mapSizeBytes ${this.mapSizeBytes} are in use; ` +
          'nothing was written — snapshot and purge the log, or raise mapSizeBytes, then retry',
        { dir: this.dir, index },
      );
    }
    this.bytesSinceMeasured = bytes;
  }
}

/** Open (creating if needed) the member directory `dir`, run the start-up scan, and return its stores. */
export const openMemberStore = async (
  dir: string,
  options: MemberStoreOptions = {},
): Promise<MemberStore> => {
  const mapSizeBytes = options.mapSizeBytes ?? DEFAULT_MAP_SIZE_BYTES;
  if (!Number.isSafeInteger(mapSizeBytes) || mapSizeBytes < 64 * 1024) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `mapSizeBytes ${String(mapSizeBytes)} must be an integer >= 65536`,
      {
        dir,
      },
    );
  }
  const chunkBytes = options.snapshotChunkBytes;
  if (
    chunkBytes !== undefined &&
    (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > 2 ** 30)
  ) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `snapshotChunkBytes ${String(chunkBytes)} must be an integer from 1 to 2^30 (default 65536)`,
      { dir },
    );
  }
  const scanMode = options.startupScan ?? 'refuse';
  if (!['refuse', 'report', 'off'].includes(scanMode)) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `startupScan '${String(scanMode)}' must be 'refuse', 'report' or 'off'`,
      {
        dir,
      },
    );
  }
  lockMemberDir(dir);
  let env: RootDatabase;
  try {
    // noSubdir: false — lmdb-js would otherwise take a directory name with a dot ("member.1") for a file.
    // eventTurnBatching: false, separateFlushed: true — see durable.ts.
    env = open({
      path: dir,
      noSubdir: false,
      mapSize: mapSizeBytes,
      maxDbs: 12,
      eventTurnBatching: false,
      separateFlushed: true,
    });
    for (const file of readdirSync(dir)) if (file.endsWith('.mdb')) chmodSync(join(dir, file), 0o600);
  } catch (error) {
    unlockMemberDir(dir);
    throw toStorageError(error, dir, 'opening the member directory');
  }
  let store: MemberStore;
  try {
    const logDb = env.openDB<Buffer, number>({ name: 'log', encoding: 'binary' });
    const metaDb = env.openDB<Buffer, string>({ name: 'log-meta', encoding: 'binary' });
    const nodeStateDb = env.openDB<Buffer, string>({ name: 'node-state', encoding: 'binary' });
    const recordingDb = env.openDB<Buffer, number>({ name: 'recording-log', encoding: 'binary' });
    const snapshotMetaDb = env.openDB<Buffer, number>({ name: 'snapshots', encoding: 'binary' });
    const snapshotChunkDb = env.openDB<Buffer, [number, number]>({
      name: 'snapshot-chunks',
      encoding: 'binary',
    });
    store = new MemberStore(
      dir,
      env,
      logDb,
      [logDb, metaDb, nodeStateDb, recordingDb, snapshotMetaDb, snapshotChunkDb],
      mapSizeBytes,
      {
        metaDb,
        nodeStateDb,
        recordingDb,
        snapshotMetaDb,
        snapshotChunkDb,
        snapshotChunkBytes: options.snapshotChunkBytes,
      },
    );
  } catch (error) {
    await env.close().catch(() => {});
    unlockMemberDir(dir);
    // A damaged purge boundary surfaces here already.
    throw toStorageError(error, dir, 'opening the member stores');
  }
  try {
    await store.snapshots.removeOrphans();
    if (scanMode !== 'off') {
      const report = store.scan({ snapshots: options.scanSnapshots ?? true });
      store.startupReport = report;
      if (!report.ok && scanMode === 'refuse') throw new StartupScanError(report);
    }
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return store;
};
