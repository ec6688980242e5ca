// The inspector's two figures.
//
// 1. Highlight latency: from a state change in a member to the frame of the page that shows it. A local
//    3-member cluster, the inspector server, and the page in Debian's Chromium (playwright-core). The
//    leader is suspended and resumed through its admin socket, again and again: each time its consensus
//    module goes ACTIVE → SUSPENDED → ACTIVE (every member's module change is counted). Each change is
//    timed in the member that made it (its transition record's atMs, the member's wall clock) and on the
//    page (the animation frame in which that member's badge moves onto the new state, the page's wall
//    clock; same machine, same clock). Goal: p99 ≤ 250 ms.
// 2. Throughput with the inspector and two live pages attached, against none, in the same run:
//    `bench cluster-inspected` (its attachedRatio; goal ≥ 0.95); the option ratio: false leaves it out.
//
//   npx chorus bench inspector --json

import { spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { adminRequest } from '../runtime/admin.ts';
import { InspectorServer } from '../runtime/inspector/server.ts';
import { LocalCluster } from '../runtime/local-cluster.ts';
import { numberOption } from './cluster.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { percentile, round } from './harness.ts';

export const describe =
  "ms from a state change in a member (the consensus module's ACTIVE/SUSPENDED, by suspend and resume) to the frame where the inspector page in Chromium shows it, 3 members; and bench cluster-inspected's throughput ratio with the inspector and two pages attached";

interface Shown {
  member: string;
  machine: string;
  to: unknown;
  shownAtMs: number;
}
interface Record {
  machine: string;
  to: string;
  atMs: number;
}

const chromiumPath = (): string => {
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === '')
    throw new Error('bench inspector needs Chromium on the PATH: apt-get install -y chromium');
  return path;
};

/** Highlight latencies (ms), one per module state change a member recorded, and how many it recorded. */
const highlightLatencies = async (
  cycles: number,
  logLevel: string,
): Promise<{ latencies: number[]; changes: number }> => {
  const executablePath = chromiumPath();
  const cluster = await LocalCluster.start({ members: 3, logLevel });
  let inspector: InspectorServer | null = null;
  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const leader = await cluster.waitForLeader(30_000);
    inspector = await InspectorServer.start({
      members: cluster.adminUrls().map((url, id) => ({ id, url: url as string })),
    });
    const page = await browser.newPage({ viewport: { width: 1500, height: 1100 } });
    await page.goto(inspector.url);
    await page.waitForSelector('#module-chart g.badge', { timeout: 60_000 });
    const dir = cluster.memberDir(leader);
    const urls = cluster.adminUrls() as string[];
    // A member keeps its last 50 transitions: read them after every few cycles (each gives 2 per member).
    const records = urls.map(() => new Map<number, Record>());
    const collect = async () => {
      for (const [id, url] of urls.entries()) {
        const state = (await (await fetch(`${url}/state`)).json()) as { transitions: Record[] };
        for (const record of state.transitions)
          if (record.machine === 'module')
            records[id]?.set(record.atMs * 100 + (record.to === 'ACTIVE' ? 1 : 0), record);
      }
    };
    await collect();
    const before = new Set(records.flatMap((r) => [...r.keys()]));
    for (let i = 0; i < cycles; i++) {
      await adminRequest(dir, { command: 'suspend' }, 10_000);
      await adminRequest(dir, { command: 'resume' }, 10_000);
      if (i % 10 === 9) await collect();
    }
    // Let the last pushes land, then compare what each member recorded with what the page showed.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await collect();
    const shown = await page.evaluate(
      () => (globalThis as unknown as { chorusInspector: { shown: Shown[] } }).chorusInspector.shown,
    );
    const latencies: number[] = [];
    let changes = 0;
    for (const [id, byKey] of records.entries()) {
      for (const [key, record] of byKey) {
        if (before.has(key)) continue;
        changes++;
        const first = shown.find(
          (s) =>
            s.member === String(id) &&
            s.machine === 'module' &&
            s.to === record.to &&
            s.shownAtMs >= record.atMs,
        );
        // A change the page never drew (the next one overtook it) is left out of the latencies, and counted
        // by `shown` < `changes`.
        if (first) latencies.push(first.shownAtMs - record.atMs);
      }
    }
    return { latencies, changes };
  } finally {
    await browser.close();
    await inspector?.close();
    await cluster.close();
  }
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const cycles = Math.floor(numberOption(options, 'cycles', 50));
  const logLevel = String(options.logLevel ?? 'info');
  const { latencies, changes } = await highlightLatencies(cycles, logLevel);
  const result: BenchResult = {
    benchmark: 'inspector',
    measured: describe,
    cycles,
    changes,
    shown: latencies.length,
    highlightP50Ms: round(percentile(latencies, 50)),
    highlightP99Ms: round(percentile(latencies, 99)),
    highlightMaxMs: round(Math.max(...latencies)),
  };
  if (options.ratio === false || options.ratio === 'false') return result;
  const inspected = await import('./cluster-inspected.ts');
  const ratio = await inspected.run(options);
  return {
    ...result,
    attachedRatio: ratio.attachedRatio,
    roundRatioP25: ratio.roundRatioP25,
    roundRatioP75: ratio.roundRatioP75,
    attachedOpsPerSec: ratio.attachedOpsPerSec,
    detachedOpsPerSec: ratio.detachedOpsPerSec,
    controlRatio: ratio.controlRatio,
    attachedVsControl: ratio.attachedVsControl,
  };
};
