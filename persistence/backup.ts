// Backup and restore of a member directory (N6, O2 at the storage level).
//
// backupMember copies a live member's LMDB environment as of one committed transaction (LMDB's own
// consistent copy, taken under a read transaction while writes go on), fsyncs it, opens the copy to
// scan every checksum, and writes a manifest (what the copy holds plus a CRC32C of the whole file).
// restoreMember checks the manifest and the file's CRC32C, copies into a staging directory next to the
// target, opens it with a full scan, compares it with the manifest, and only then renames it into place:
// a damaged backup never becomes a member directory.

import { createReadStream } from 'node:fs';
import {
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { StorageError, toStorageError } from './errors.ts';
import { type MemberStore, type MemberStoreOptions, openMemberStore } from './member-store.ts';
import type { ScanReport } from './startup-scan.ts';

export const BACKUP_MANIFEST = 'chorus-backup.json';
export const BACKUP_FORMAT = 1;
const DATA_FILE = 'data.mdb';
const LOCK_FILE = 'lock.mdb';

export interface BackupManifest {
  readonly format: number;
  readonly sourceDir: string;
  /** Wall-clock time the backup finished (ISO 8601). */
  readonly createdAt: string;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Log index of the latest valid snapshot set in the copy, or null. */
  readonly snapshotIndex: number | null;
  readonly currentTerm: number;
  readonly dataBytes: number;
  readonly dataCrc32c: number;
}

export interface RestoreReport {
  readonly memberDir: string;
  readonly manifest: BackupManifest;
  readonly scan: ScanReport;
}

const isDirEmptyOrMissing = async (dir: string): Promise<boolean> => {
  try {
    return (await readdir(dir)).length === 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
};

const fileCrc32c = async (path: string): Promise<{ bytes: number; crc: number }> => {
  let crc = 0;
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    crc = crc32c(chunk as Buffer, crc);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, crc: crc >>> 0 };
};

const fsyncPath = async (path: string): Promise<void> => {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/** Open a copied environment, scan it fully, and describe it. Leaves no lock file behind. */
const inspectCopy = async (
  dir: string,
  options: MemberStoreOptions,
): Promise<{
  scan: ScanReport;
  figures: Omit<BackupManifest, 'format' | 'sourceDir' | 'createdAt' | 'dataBytes' | 'dataCrc32c'>;
}> => {
  const copy = await openMemberStore(dir, { ...options, startupScan: 'refuse' });
  try {
    const figures = {
      firstIndex: copy.log.firstIndex,
      lastIndex: copy.log.lastIndex,
      lastTerm: copy.log.lastTerm,
      snapshotIndex: copy.recordingLog.latestValidSnapshotSet()?.logIndex ?? null,
      currentTerm: copy.nodeState.load().currentTerm,
    };
    return { scan: copy.startupReport!, figures };
  } finally {
    await copy.close();
    await rm(join(dir, LOCK_FILE), { force: true });
  }
};

/**
 * Copy the live member `store` into `targetDir` (created; must be empty) and validate the copy.
 * Entries appended before the call are in it once their appends resolved; later ones may be.
 */
export const backupMember = async (
  store: MemberStore,
  targetDir: string,
  options: { compact?: boolean } = {},
): Promise<BackupManifest> => {
  const target = resolve(targetDir);
  if (!(await isDirEmptyOrMissing(target))) {
    throw new StorageError(
      'TARGET_NOT_EMPTY',
      `backup target ${target} is not empty; give an empty or new directory`,
      {
        dir: store.dir,
      },
    );
  }
  await store.log.sync();
  try {
    await mkdir(target, { recursive: true });
    await store.env.backup(target, options.compact ?? false);
    await fsyncPath(join(target, DATA_FILE));
  } catch (error) {
    throw toStorageError(error, store.dir, `copying the member to ${target}`);
  }
  const { figures } = await inspectCopy(target, { mapSizeBytes: store.mapSizeBytes });
  const { bytes, crc } = await fileCrc32c(join(target, DATA_FILE));
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    sourceDir: resolve(store.dir),
    createdAt: new Date().toISOString(),
    ...figures,
    dataBytes: bytes,
    dataCrc32c: crc,
  };
  const temporary = join(target, `${BACKUP_MANIFEST}.tmp`);
  await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  await fsyncPath(temporary);
  await rename(temporary, join(target, BACKUP_MANIFEST));
  await fsyncPath(target);
  return manifest;
};

const readManifest = async (backupDir: string): Promise<BackupManifest> => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(join(backupDir, BACKUP_MANIFEST), 'utf8'));
  } catch (error) {
    throw new StorageError(
      'INVALID_BACKUP',
      `${join(backupDir, BACKUP_MANIFEST)} is missing or not JSON (${(error as Error).message}); this is not a finished Chorus backup`,
      { dir: backupDir, cause: error },
    );
  }
  const manifest = parsed as BackupManifest;
  const numeric = ['firstIndex', 'lastIndex', 'lastTerm', 'currentTerm', 'dataBytes', 'dataCrc32c'] as const;
  const bad = numeric.find((field) => !Number.isSafeInteger(manifest?.[field]));
  if (manifest?.format !== BACKUP_FORMAT || bad !== undefined) {
    throw new StorageError(
      'INVALID_BACKUP',
      `the backup manifest in ${backupDir} has ${bad === undefined ? `format ${String(manifest?.format)} (expected ${BACKUP_FORMAT})` : `a bad ${bad}`}`,
      { dir: backupDir },
    );
  }
  return manifest;
};

/**
 * Restore the backup in `backupDir` as the member directory `memberDir` (which must be empty or
 * missing). Validates the file checksum, scans the copy and checks it against the manifest before the
 * directory appears. Throws INVALID_BACKUP (nothing restored) or TARGET_NOT_EMPTY.
 */
export const restoreMember = async (
  backupDir: string,
  memberDir: string,
  options: MemberStoreOptions = {},
): Promise<RestoreReport> => {
  const source = resolve(backupDir);
  const target = resolve(memberDir);
  const manifest = await readManifest(source);
  if (!(await isDirEmptyOrMissing(target))) {
    throw new StorageError(
      'TARGET_NOT_EMPTY',
      `restore target ${target} already holds data; move it aside (it may be evidence) and retry`,
      { dir: target },
    );
  }
  const data = join(source, DATA_FILE);
  const { bytes, crc } = await fileCrc32c(data).catch((error: unknown) => {
    throw new StorageError('INVALID_BACKUP', `cannot read ${data}: ${(error as Error).message}`, {
      dir: source,
      cause: error,
    });
  });
  if (bytes !== manifest.dataBytes || crc !== manifest.dataCrc32c) {
    throw new StorageError(
      'INVALID_BACKUP',
      `${data} does not match its manifest (${bytes} bytes, CRC32C ${crc}; manifest says ${manifest.dataBytes} bytes, ` +
        `CRC32C ${manifest.dataCrc32c}); the backup is damaged — use another one`,
      { dir: source },
    );
  }
  const staging = `${target}.restoring-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  try {
    await mkdir(staging, { recursive: true });
    await copyFile(data, join(staging, DATA_FILE));
    await fsyncPath(join(staging, DATA_FILE));
    let inspected: Awaited<ReturnType<typeof inspectCopy>>;
    try {
      inspected = await inspectCopy(staging, options);
    } catch (error) {
      throw new StorageError(
        'INVALID_BACKUP',
        `the backup in ${source} fails validation: ${(error as Error).message}`,
        {
          dir: source,
          cause: error,
        },
      );
    }
    const mismatch = (['firstIndex', 'lastIndex', 'lastTerm', 'currentTerm', 'snapshotIndex'] as const).find(
      (field) => inspected.figures[field] !== manifest[field],
    );
    if (mismatch !== undefined) {
      throw new StorageError(
        'INVALID_BACKUP',
        `the backup in ${source} holds ${mismatch} ${inspected.figures[mismatch]} but its manifest says ${manifest[mismatch]}`,
        { dir: source },
      );
    }
    if ((await stat(target).catch(() => undefined)) !== undefined) await rmdir(target);
    await rename(staging, target);
    await fsyncPath(resolve(target, '..'));
    return { memberDir: target, manifest, scan: inspected.scan };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
};
