// The elkjs layout off the caller's thread: a member draws its statecharts for the inspector while it
// runs consensus, and ELK's layered layout takes hundreds of milliseconds of CPU on a busy machine —
// on the member's event loop that would delay heartbeats and start elections. A message is ELK's JSON
// graph (plain data) with an id; the answer is the laid-out graph or an error, with the same id.

import { parentPort } from 'node:worker_threads';
import ElkBundled from 'elkjs/lib/elk.bundled.js';
import type { ELK, ElkNode } from 'elkjs/lib/elk-api.js';

// elkjs is CommonJS: its default export is the constructor (TypeScript's NodeNext view misses that).
const elk = new (ElkBundled as unknown as new () => ELK)();

parentPort?.on('message', async ({ id, graph }: { id: number; graph: ElkNode }) => {
  try {
    parentPort?.postMessage({ id, laid: await elk.layout(graph) });
  } catch (error) {
    parentPort?.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
