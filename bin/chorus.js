#!/usr/bin/env node
// The `chorus` command. In a checkout it runs the TypeScript sources through tsx (no build step, so an
// old dist/ never runs by mistake); in the npm package, which ships no sources, it runs the JavaScript
// that `npm run build` emitted to dist/.
import { existsSync } from 'node:fs';

const sources = new URL('../runtime/cli.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/runtime/cli.js');
}
