// A scratch copy of the source tree to break a rule in (node_modules linked, not copied), shared by
// the mutation runner and the broken-rule specs. The working checkout is never modified.
//
// A patch finds its target by text anywhere under SEARCHED, whitespace-insensitively, so a refactor
// that moves the guarded line to another file or re-indents it keeps the mutation working; a patch
// whose text is not found exactly once fails loudly ("target not found", "found N times") instead of
// leaving a mutation that silently changes nothing.

import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MUTATIONS, type Mutation, type Patch } from './mutations.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Where patches look for their target (the consensus module, and the statecharts it drives). */
export const SEARCHED: readonly string[] = ['actors/consensus', 'machines'];
const SKIP = new Set(['node_modules', '.git', 'spec', 'docs']);

/**
 * A copy of the working tree (default) or of a git revision (`rev`: what was committed, without the
 * unfinished edits others may have in the checkout).
 */
export const scratchCopy = (rev?: string): string => {
  const scratch = mkdtempSync(join(tmpdir(), 'chorus-mutate-'));
  if (rev !== undefined) {
    const archive = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', rev], {
      maxBuffer: 512 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', scratch], { input: archive });
    for (const entry of SKIP)
      if (entry !== 'node_modules') rmSync(join(scratch, entry), { recursive: true, force: true });
  } else {
    for (const entry of readdirSync(ROOT)) {
      if (SKIP.has(entry)) continue;
      cpSync(join(ROOT, entry), join(scratch, entry), { recursive: true });
    }
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

/** Every patch of a mutation: the first find/replace and any further ones. */
export const patchesOf = (mutation: Mutation): readonly Patch[] => [
  { find: mutation.find, replace: mutation.replace },
  ...(mutation.more ?? []),
];

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The patch's text as a pattern in which any run of whitespace matches any other. */
const pattern = (find: string): RegExp =>
  new RegExp(find.trim().split(/\s+/).map(escapeRegExp).join('\\s+'), 'g');

const sourceFiles = (root: string): string[] => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) files.push(relative(root, path));
    }
  };
  // A copy may hold only some of the folders (the specs build a small one).
  for (const folder of SEARCHED) if (existsSync(join(root, folder))) walk(join(root, folder));
  return files.sort();
};

interface Match {
  readonly file: string;
  readonly index: number;
  readonly length: number;
}

const locate = (root: string, find: string): Match[] => {
  const matches: Match[] = [];
  for (const file of sourceFiles(root)) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const m of text.matchAll(pattern(find))) matches.push({ file, index: m.index, length: m[0].length });
  }
  return matches;
};

/** Why the mutation's patches cannot be applied in `root` (null: each target is found exactly once). */
export const patchProblem = (mutation: Mutation, root: string = ROOT): string | null => {
  for (const patch of patchesOf(mutation)) {
    const matches = locate(root, patch.find);
    const what = JSON.stringify(patch.find.trim().slice(0, 70));
    if (matches.length === 0) return `target not found under ${SEARCHED.join(', ')}: ${what}`;
    if (matches.length > 1)
      return `target found ${matches.length} times (${matches.map((m) => m.file).join(', ')}): ${what}`;
  }
  return null;
};

/** Apply the patches in the scratch copy; returns a function that undoes them. Throws unless each matches once. */
export const applyMutation = (scratch: string, mutation: Mutation): (() => void) => {
  const problem = patchProblem(mutation, scratch);
  if (problem !== null) throw new Error(`mutation ${mutation.id}: ${problem}`);
  const originals = new Map<string, string>();
  for (const patch of patchesOf(mutation)) {
    const [match] = locate(scratch, patch.find);
    const path = join(scratch, match.file);
    const text = readFileSync(path, 'utf8');
    if (!originals.has(path)) originals.set(path, text);
    writeFileSync(path, text.slice(0, match.index) + patch.replace + text.slice(match.index + match.length));
  }
  return () => {
    for (const [path, text] of originals) writeFileSync(path, text);
  };
};
