// Whether this copy of Chorus runs from its TypeScript sources (through tsx, in a checkout) or from the
// JavaScript that `npm run build` emits to dist/ (the npm package), and what follows from it: the
// extension of its modules and how to start its own CLI as a child process.

import { fileURLToPath } from 'node:url';

/** True when running the TypeScript sources; false when running dist/. */
export const fromSources = import.meta.url.endsWith('.ts');

/** The extension of this build's modules: `.ts` in a checkout, `.js` in dist/. */
export const moduleExtension = fromSources ? '.ts' : '.js';

/** The URL of the module `path` (no extension) relative to `base` (an `import.meta.url`), in this build. */
export const moduleUrl = (path: string, base: string): URL => new URL(`${path}${moduleExtension}`, base);

/** The directory holding Chorus's package.json: the checkout, or the installed package (above dist/). */
export const packageRoot = fileURLToPath(new URL(fromSources ? '..' : '../..', import.meta.url));

/**
 * The argv that starts this build's `chorus` CLI: the sources through bin/chorus.js (which registers
 * tsx), or dist/runtime/cli.js with plain node.
 */
export const chorusCommand = (): string[] => [
  process.execPath,
  fileURLToPath(new URL(fromSources ? '../bin/chorus.js' : './cli.js', import.meta.url)),
];
