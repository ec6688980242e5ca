// A scratch copy of the source tree to break a rule in (node_modules linked, not copied), shared by
// the mutation runner and the broken-rule specs. The working checkout is never modified.

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MUTATIONS, type Mutation } from './mutations.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SKIP = new Set(['node_modules', '.git', 'spec', 'docs']);

export const scratchCopy = (): string => {
  const scratch = mkdtempSync(join(tmpdir(), 'chorus-mutate-'));
  for (const entry of readdirSync(ROOT)) {
    if (SKIP.has(entry)) continue;
    cpSync(join(ROOT, entry), join(scratch, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(scratch, 'node_modules'), 'dir');
  return scratch;
};

export const removeScratch = (scratch: string): void => rmSync(scratch, { recursive: true, force: true });

export const mutationNamed = (id: string): Mutation => {
  const mutation = MUTATIONS.find((m) => m.id === id);
  if (!mutation) throw new Error(`no mutation named ${id}`);
  return mutation;
};

/** How often the patch's text occurs in the checkout's file (it must be exactly once). */
export const patchMatches = (mutation: Mutation): number =>
  readFileSync(join(ROOT, mutation.file), 'utf8').split(mutation.find).length - 1;

/** Apply the patch in the scratch copy; returns a function that undoes it. Throws unless it matches once. */
export const applyMutation = (scratch: string, mutation: Mutation): (() => void) => {
  const original = readFileSync(join(ROOT, mutation.file), 'utf8');
  const count = original.split(mutation.find).length - 1;
  if (count !== 1) {
    throw new Error(
      `mutation ${mutation.id}: the patch matches ${count} times in ${mutation.file} (must be exactly once)`,
    );
  }
  const target = join(scratch, mutation.file);
  writeFileSync(target, original.replace(mutation.find, mutation.replace));
  return () => writeFileSync(target, original);
};
