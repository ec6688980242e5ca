// One member process per member directory: a pid file taken with O_EXCL, taken over from a process that
// died. The directory and its files are the owner's only (0700 / 0600).

import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StorageError, toStorageError } from './errors.ts';

/** The file naming the process that has a member directory open. */
export const MEMBER_LOCK_FILE = 'chorus.pid';
const openInThisProcess = new Set<string>();

/** Whether a process with this id exists (EPERM: it does, owned by someone else). Also used by the nemesis's lock. */
export const pidAlive = (pid: number): boolean => {
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
export const lockMemberDir = (dir: string): void => {
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
      if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) {
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

export const unlockMemberDir = (dir: string): void => {
  openInThisProcess.delete(resolve(dir));
  rmSync(join(dir, MEMBER_LOCK_FILE), { force: true });
};
