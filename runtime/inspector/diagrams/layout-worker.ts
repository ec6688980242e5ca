// The elkjs layout off the caller's thread: a member draws its statecharts for the inspector while it
// runs consensus, and ELK's layered layout takes hundreds of milliseconds of CPU on a busy machine —
// on the member's event loop that would delay heartbeats and start elections. Plain JavaScript (the
// message is ELK's JSON graph, plain data), so it needs no TypeScript loader.
import { parentPort } from 'node:worker_threads';
import ElkBundled from 'elkjs/lib/elk.bundled.js';

const elk = new ElkBundled();
parentPort.on('message', async ({ id, graph }) => {
  try {
    parentPort.postMessage({ id, laid: await elk.layout(graph) });
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
