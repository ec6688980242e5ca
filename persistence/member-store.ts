// One member's durable state: a single LMDB environment in the member directory, with named databases
// for the log, the log's purge boundary, node state, the recording log, snapshot metadata and snapshot
// chunks. openMemberStore() is the one entry point; it runs the start-up scan (every checksum) and
// refuses to open a damaged member unless asked only to report (D3, N5, O3).

import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Database, open, type RootDatabase } from 'lmdb';
import { StorageError, type StorageErrorCode, toStorageError } from './errors.ts';
import { LogStore } from './log-store.ts';
import { type NodeState, NodeStateStore } from './node-state.ts';
import { checkEntryRecord, recordTerm } from './record-codec.ts';
import { RecordingLog, type SnapshotEntry, type SnapshotSet, type TermEntry } from './recording-log.ts';
import { type SnapshotInfo, SnapshotStore } from './snapshot-store.ts';

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

export interface ScanProblem {
  readonly code: StorageErrorCode;
  readonly dir: string;
  readonly index?: number;
  readonly snapshotId?: number;
  readonly chunk?: number;
  readonly message: string;
}

export interface ScanReport {
  readonly dir: string;
  readonly ok: boolean;
  readonly entriesChecked: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotsChecked: number;
  /** The first problems found (at most MAX_REPORTED_PROBLEMS); `problemCount` counts them all. */
  readonly problems: readonly ScanProblem[];
  readonly problemCount: number;
}

export interface RecoveryPlan {
  /** The snapshot set to load, or undefined to replay the log from index 1. */
  readonly snapshotSet: SnapshotSet | undefined;
  readonly snapshots: readonly { readonly entry: SnapshotEntry; readonly info: SnapshotInfo }[];
  /** Replay entries replayFrom..replayTo (empty when replayFrom > replayTo). */
  readonly replayFrom: number;
  readonly replayTo: number;
  readonly lastTerm: TermEntry | undefined;
  readonly nodeState: NodeState;
  /** Valid sets passed over, newest first, and why. */
  readonly skipped: readonly { readonly setId: number; readonly logIndex: number; readonly reason: string }[];
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

export class StartupScanError extends StorageError {
  constructor(readonly report: ScanReport) {
    const first = report.problems[0];
    super(
      first.code,
      `the start-up scan found ${report.problemCount} problem(s); first: ${first.message}. ` +
        'This member refuses to start: rebuild it from the leader (wipe the directory) or restore a backup',
      { dir: report.dir, index: first.index, snapshotId: first.snapshotId, chunk: first.chunk },
    );
  }
}

export const DEFAULT_MAP_SIZE_BYTES = 4 * 1024 ** 3;
export const MAX_REPORTED_PROBLEMS = 100;

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

  /**
   * Check every checksum: each log entry (and that indices are contiguous and terms never decrease),
   * the purge boundary, the node state, the recording log, snapshot metadata and (by default) every
   * snapshot's data, and that the recording log's valid snapshots exist.
   */
  scan(options: { snapshots?: boolean } = {}): ScanReport {
    const problems: ScanProblem[] = [];
    let problemCount = 0;
    const report = (problem: Omit<ScanProblem, 'dir'>): void => {
      problemCount++;
      if (problems.length < MAX_REPORTED_PROBLEMS) problems.push({ ...problem, dir: this.dir });
    };
    const { firstIndex, lastIndex } = this.log;
    let entriesChecked = 0;
    let expected = firstIndex;
    let previousTerm = this.log.purgeBoundary.term;
    try {
      // Keys, then each value through getBinaryFast (a reused buffer, not a copy: nothing keeps it).
      for (const key of this.logDb.getKeys({ start: firstIndex, end: lastIndex + 1 })) {
        const value = this.logDb.getBinaryFast(key);
        if (key !== expected) {
          report({
            code: 'CORRUPT_ENTRY',
            index: expected,
            message: `log entries ${expected}..${key - 1} are missing (a hole in the log)`,
          });
          expected = key;
        }
        entriesChecked++;
        const problem = checkEntryRecord(value, key);
        if (problem !== undefined) {
          report({ code: 'CORRUPT_ENTRY', index: key, message: `log entry ${key}: ${problem}` });
        } else {
          const term = recordTerm(value!);
          if (term < previousTerm) {
            report({
              code: 'CORRUPT_ENTRY',
              index: key,
              message: `log entry ${key} has term ${term}, lower than the term ${previousTerm} before it`,
            });
          }
          previousTerm = term;
        }
        expected++;
      }
    } catch (error) {
      const failure = toStorageError(error, this.dir, 'scanning the log', expected);
      report({ code: failure.code, index: expected, message: failure.message });
    }
    if (expected <= lastIndex) {
      report({
        code: 'CORRUPT_ENTRY',
        index: expected,
        message: `log entries ${expected}..${lastIndex} are missing`,
      });
    }
    try {
      this.nodeState.load();
    } catch (error) {
      report({ code: 'CORRUPT_RECORD', message: (error as Error).message });
    }
    for (const { entryId, problem } of this.recordingLog.damaged()) {
      report({ code: 'CORRUPT_RECORD', message: `recording log entry ${entryId} is damaged: ${problem}` });
    }
    for (const { snapshotId, problem } of this.snapshots.damagedMetadata()) {
      report({
        code: 'CORRUPT_SNAPSHOT',
        snapshotId,
        message: `snapshot ${snapshotId} metadata is damaged: ${problem}`,
      });
    }
    let snapshotsChecked = 0;
    if (options.snapshots ?? true) {
      for (const info of this.snapshots.list()) {
        const failure = this.snapshots.verify(info.snapshotId);
        snapshotsChecked++;
        if (failure !== undefined) {
          report({
            code: failure.code,
            snapshotId: info.snapshotId,
            chunk: failure.chunk,
            message: failure.message,
          });
        }
      }
    }
    try {
      const stored = new Set(this.snapshots.list().map((info) => info.snapshotId));
      for (const set of this.recordingLog.snapshotSets()) {
        if (!set.valid) continue;
        for (const entry of set.snapshots) {
          if (!stored.has(entry.snapshotId)) {
            report({
              code: 'CORRUPT_SNAPSHOT',
              snapshotId: entry.snapshotId,
              message: `the recording log's valid snapshot ${entry.snapshotId} (service ${entry.serviceId}, log index ${entry.logIndex}) is missing from the snapshot store`,
            });
          }
        }
      }
    } catch {
      // A damaged recording log is already reported above.
    }
    return {
      dir: this.dir,
      ok: problemCount === 0,
      entriesChecked,
      firstIndex,
      lastIndex,
      snapshotsChecked,
      problems,
      problemCount,
    };
  }

  /**
   * What recovery loads: the latest valid snapshot set whose snapshots are intact and which the log
   * continues from, then the log after it. A set that fails is skipped (and listed), falling back to
   * the one before it. Throws COMPACTED when the log was purged and no usable snapshot covers the gap.
   */
  recoveryPlan(options: { verifySnapshots?: boolean } = {}): RecoveryPlan {
    const verify = options.verifySnapshots ?? true;
    const skipped: { setId: number; logIndex: number; reason: string }[] = [];
    const { firstIndex, lastIndex } = this.log;
    const nodeState = this.nodeState.load();
    const lastTerm = this.recordingLog.lastTerm();
    for (const set of this.recordingLog.snapshotSets()) {
      if (!set.valid) continue;
      const reason = this.unusableReason(set, verify);
      if (reason !== undefined) {
        skipped.push({ setId: set.setId, logIndex: set.logIndex, reason });
        continue;
      }
      const snapshots = set.snapshots.map((entry) => ({
        entry,
        info: this.snapshots.info(entry.snapshotId)!,
      }));
      return {
        snapshotSet: set,
        snapshots,
        replayFrom: set.logIndex + 1,
        replayTo: lastIndex,
        lastTerm,
        nodeState,
        skipped,
      };
    }
    if (firstIndex > 1) {
      throw new StorageError(
        'COMPACTED',
        `no usable snapshot covers the log purged up to ${firstIndex - 1}` +
          (skipped.length > 0
            ? ` (skipped: ${skipped.map((s) => `${s.logIndex}: ${s.reason}`).join('; ')})`
            : '') +
          '; rebuild this member from the leader or restore a backup',
        { dir: this.dir, index: firstIndex - 1 },
      );
    }
    return {
      snapshotSet: undefined,
      snapshots: [],
      replayFrom: 1,
      replayTo: lastIndex,
      lastTerm,
      nodeState,
      skipped,
    };
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

  private unusableReason(set: SnapshotSet, verify: boolean): string | undefined {
    const { firstIndex, lastIndex } = this.log;
    if (set.logIndex + 1 < firstIndex) return `the log was purged past it (first index ${firstIndex})`;
    if (set.logIndex > lastIndex) return `it is beyond the log's last index ${lastIndex}`;
    let boundaryTerm: number | undefined;
    try {
      boundaryTerm = this.log.termAt(set.logIndex);
    } catch (error) {
      return (error as Error).message;
    }
    if (boundaryTerm !== undefined && boundaryTerm !== set.term) {
      return `the log has term ${boundaryTerm} at ${set.logIndex}, the snapshot says ${set.term}`;
    }
    for (const entry of set.snapshots) {
      let info: SnapshotInfo | undefined;
      try {
        info = this.snapshots.info(entry.snapshotId);
      } catch (error) {
        return (error as Error).message;
      }
      if (info === undefined) return `snapshot ${entry.snapshotId} (service ${entry.serviceId}) is missing`;
      if (info.serviceId !== entry.serviceId || info.logIndex !== set.logIndex) {
        return `snapshot ${entry.snapshotId} is of service ${info.serviceId} at ${info.logIndex}, not service ${entry.serviceId} at ${set.logIndex}`;
      }
      if (verify) {
        const failure = this.snapshots.verify(entry.snapshotId);
        if (failure !== undefined) return failure.message;
      }
    }
    return undefined;
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

/** The file naming the process that has a member directory open. */
export const MEMBER_LOCK_FILE = 'chorus.pid';
const openInThisProcess = new Set<string>();

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * One member process per directory: LMDB would let two processes share it, but two members with one
 * identity would break Raft's promises. A lock left by a process that died (SIGKILL) is taken over.
 */
const lockMemberDir = (dir: string): void => {
  const key = resolve(dir);
  if (openInThisProcess.has(key)) {
    throw new StorageError('LOCKED', 'the member directory is already open in this process; close it first', {
      dir,
    });
  }
  const path = join(dir, MEMBER_LOCK_FILE);
  try {
    // Only the member's user may read the log (commands included): directories 0700, files 0600.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        openInThisProcess.add(key);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new StorageError(
          'LOCKED',
          `the member directory is in use by process ${holder}; stop that member before starting another on it`,
          { dir },
        );
      }
      rmSync(path, { force: true }); // left by a process that is gone
    }
  } catch (error) {
    throw toStorageError(error, dir, 'locking the member directory');
  }
  throw new StorageError('LOCKED', `could not take ${path}; another process keeps creating it`, { dir });
};

const unlockMemberDir = (dir: string): void => {
  openInThisProcess.delete(resolve(dir));
  rmSync(join(dir, MEMBER_LOCK_FILE), { force: true });
};

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
