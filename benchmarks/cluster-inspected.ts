// What watching costs: `bench cluster`'s workload (256-byte KV puts from closed-loop workers, acknowledged
// once committed and applied) on one local 3-member cluster, in alternating 1 s slices with the inspector
// (`chorus inspect`'s server, in this process) and two live pages attached to it, and with none. A page is a
// WebSocket on /api/live, as the page opens it, which makes the inspector open every member's /live; when
// the last page leaves, the members' sockets close and the members push nothing. Slices alternate ABBA so
// both arms see the same background load; `attachedRatio` is the median of the per-pair ratios (goal ≥ 0.95).
// Both arms run with every member's admin HTTP listener and metrics on.
//
//   npx chorus bench cluster-inspected --clients 64 --json

import { WebSocket } from 'ws';
import { endpointsOf, InspectorServer } from '../runtime/inspector/server.ts';
import {
  cpuPerCommand,
  measuredSlice,
  numberOption,
  rate,
  type SliceResult,
  startTarget,
  stopTarget,
  type Target,
  verifyTarget,
} from './cluster.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { percentile, round } from './harness.ts';

export const describe =
  'bench cluster throughput (3 members, 256-byte puts, N closed-loop workers) with the inspector and two live pages attached, against none attached, alternated in 1 s slices in the same run';

/** Live pages attached in the watched slices. */
export const PAGES = 2;

/** Attach `count` pages to the inspector's /api/live; resolves once each has had every member's state. */
const attachPages = async (
  inspector: InspectorServer,
  members: number,
  count: number,
): Promise<WebSocket[]> =>
  Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const page = new WebSocket(`${inspector.url.replace('http', 'ws')}api/live`);
          const seen = new Set<number>();
          let messages = 0;
          page.on('message', (data) => {
            messages++;
            const message = JSON.parse(data.toString()) as { member: number; type: string };
            if (message.type === 'state') seen.add(message.member);
            if (seen.size === members) resolve(page);
          });
          page.once('error', reject);
          page.once('close', () => reject(new Error(`a page closed after ${messages} messages`)));
        }),
    ),
  );

const detachPages = async (pages: readonly WebSocket[]): Promise<void> => {
  await Promise.all(
    pages.map(
      (page) =>
        new Promise<void>((resolve) => {
          page.removeAllListeners();
          page.once('close', () => resolve());
          page.close();
        }),
    ),
  );
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const workers = Math.floor(numberOption(options, 'clients', 64));
  const durationMs = numberOption(options, 'durationMs', 6000);
  const sliceMs = numberOption(options, 'sliceMs', 1000);
  const warmupMs = numberOption(options, 'warmupMs', 1000);
  const logLevel = String(options.logLevel ?? 'info');
  let target: Target | null = null;
  let inspector: InspectorServer | null = null;
  try {
    target = await startTarget(3, workers, logLevel);
    inspector = await InspectorServer.start({ members: endpointsOf(target.cluster.config) });
    const load = target.load!;
    await load.runFor(warmupMs, false);
    const watched: SliceResult[] = [];
    const unwatched: SliceResult[] = [];
    const ratios: number[] = [];
    let pushes = 0;
    const slice = async (attached: boolean): Promise<SliceResult> => {
      if (!attached) return measuredSlice(target!, sliceMs);
      const pages = await attachPages(inspector!, 3, PAGES);
      for (const page of pages) page.on('message', () => pushes++);
      try {
        return await measuredSlice(target!, sliceMs);
      } finally {
        await detachPages(pages);
      }
    };
    for (let i = 0; i < Math.max(1, Math.round(durationMs / sliceMs)); i++) {
      const watchFirst = i % 2 === 0;
      const first = await slice(watchFirst);
      const second = await slice(!watchFirst);
      const [a, b] = watchFirst ? [first, second] : [second, first];
      watched.push(a);
      unwatched.push(b);
      ratios.push(a.ops / a.elapsedMs / (b.ops / b.elapsedMs));
    }
    const verifiedWrites = await verifyTarget(target);
    return {
      benchmark: 'cluster-inspected',
      measured: describe,
      clients: workers,
      pages: PAGES,
      durationMs,
      sliceMs,
      attachedOpsPerSec: round(rate(watched)),
      detachedOpsPerSec: round(rate(unwatched)),
      attachedRatio: round(percentile(ratios, 50)),
      attachedRatioMin: round(Math.min(...ratios)),
      attachedRatioMax: round(Math.max(...ratios)),
      attachedCpuUsPerCommand: cpuPerCommand(watched),
      detachedCpuUsPerCommand: cpuPerCommand(unwatched),
      pushesPerPagePerSec: round((pushes * 1000) / PAGES / watched.reduce((n, s) => n + s.elapsedMs, 0)),
      verifiedWrites,
    };
  } finally {
    await inspector?.close();
    if (target) await stopTarget(target);
  }
};
