// `npm run build` (prepack runs it): JavaScript and type declarations from tsconfig.build.json into dist/
// (or the directory given), then the files tsc does not emit that the package needs at run time: the
// inspector's page (HTML, CSS and browser JavaScript served by `chorus inspect`).
//
//   node scripts/build.mjs [OUT_DIR]

import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Directories copied as they are, relative to the root (and to the output). */
const ASSETS = ['runtime/inspector/page'];

const out = resolve(process.argv[2] ?? join(root, 'dist'));
rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', out],
  { cwd: root, stdio: 'inherit' },
);
for (const dir of ASSETS) cpSync(join(root, dir), join(out, dir), { recursive: true });
