// What watching costs: `bench cluster`'s workload (256-byte KV puts from closed-loop workers, acknowledged
// once committed and applied) on one local 3-member cluster, with the inspector (`chorus inspect`'s server,
// in this process) and two live pages attached to it, against none attached, in the same run. A page is a
// WebSocket on /api/live, as the page opens it, which makes the inspector open every member's /live; when
// the last page leaves, the members' sockets close and the members push nothing. Both arms run with every
// member's admin HTTP listener and metrics on.
//
// How it is measured, since single slices on a loaded 2-core machine swing by ±50% (snapshots, GC, the
// other processes): the load never stops between slices. Before each measured slice comes a settling period
// (`settleMs`, load running, not measured) in which pages attach or leave, so both arms start from a running
// cluster and neither pays for the attach. A round is four slices in the order attached, detached, detached,
// attached (ABBA: a steady drift cancels out); its ratio is the attached arm's ops/s over the detached arm's.
// `attachedRatio` is the median over the rounds (goal ≥ 0.95), with the quartiles and the extremes as the
// spread. CPU per command is reported for the members and for this process (the load, the inspector, the
// pages) in each arm. The control (CHORUS_BENCH_CONTROL=1) attaches nothing in the "attached" arm: what the method reports when the arms
// are the same (its bias and noise floor).
//
//   npx chorus bench cluster-inspected --json [--runs ROUNDS (9)]
//   CHORUS_BENCH_CONTROL=1 npx chorus bench cluster-inspected --json     # the control: nothing attached

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
  'bench cluster throughput (3 members, 256-byte puts, N closed-loop workers) with the inspector and two live pages attached, against none attached: rounds of four 1 s slices (attached, detached, detached, attached) with the load running throughout; the median of the rounds’ ratios';

/** Live pages attached in the watched slices. */
export const PAGES = 2;
/** One round's arms, in order: attached (true) and detached (false), ABBA. */
const ROUND = [true, false, false, true] as const;

/** Attach `count` pages to the inspector's /api/live; resolves once each has had every member's state. */
const attachPages = async (
  inspector: InspectorServer,
  members: number,
  count: number,
  onMessage: (bytes: number) => void,
): Promise<WebSocket[]> =>
  Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const page = new WebSocket(`${inspector.url.replace('http', 'ws')}api/live`);
          const seen = new Set<number>();
          let messages = 0;
          page.on('message', (data: Buffer) => {
            messages++;
            onMessage(data.length);
            // A page parses every message it is sent, as the real one does.
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
          page.removeAllListeners('close');
          page.removeAllListeners('error');
          page.on('error', () => {});
          page.once('close', () => resolve());
          page.close();
        }),
    ),
  );
};

const ratioOf = (a: readonly SliceResult[], b: readonly SliceResult[]): number => rate(a) / rate(b);

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const workers = Math.floor(numberOption(options, 'clients', 64));
  const rounds = Math.max(1, Math.floor(numberOption(options, 'runs', numberOption(options, 'rounds', 9))));
  const sliceMs = numberOption(options, 'sliceMs', 1000);
  const settleMs = numberOption(options, 'settleMs', 250);
  const warmupMs = numberOption(options, 'warmupMs', 1000);
  const control =
    options.control === true || options.control === 'true' || process.env.CHORUS_BENCH_CONTROL === '1';
  const logLevel = String(options.logLevel ?? 'info');
  let target: Target | null = null;
  let inspector: InspectorServer | null = null;
  let pages: WebSocket[] = [];
  try {
    target = await startTarget(3, workers, logLevel);
    inspector = await InspectorServer.start({ members: endpointsOf(target.cluster.config) });
    const load = target.load!;
    await load.runFor(warmupMs, false);
    let counting = false;
    /** This process's CPU (µs) and commands acknowledged per slice: it hosts the load, inspector and pages. */
    const ownCpu = { attached: [] as [number, number][], detached: [] as [number, number][] };
    const perCommand = (slices: [number, number][]) =>
      round(slices.reduce((n, [us]) => n + us, 0) / slices.reduce((n, [, ops]) => n + ops, 0));
    let pushes = 0;
    let pushedBytes = 0;
    const onMessage = (bytes: number) => {
      if (!counting) return;
      pushes++;
      pushedBytes += bytes;
    };
    /** One measured slice of an arm, after a settling period in which the pages attach or leave. */
    const slice = async (attached: boolean): Promise<SliceResult> => {
      const want = attached && !control ? PAGES : 0;
      let done = true;
      let failure: unknown = null;
      if (pages.length !== want) {
        done = false;
        const leaving = pages;
        pages = [];
        (async () => {
          await detachPages(leaving);
          if (want > 0) pages = await attachPages(inspector!, 3, want, onMessage);
        })().then(
          () => {
            done = true;
          },
          (error: unknown) => {
            failure = error;
            done = true;
          },
        );
      }
      await load.runFor(settleMs, false);
      // An attach slower than the settling period: the load goes on, still unmeasured, until it is done.
      while (!done) await load.runFor(20, false);
      if (failure !== null) throw failure;
      counting = attached;
      const cpu = process.cpuUsage();
      try {
        const measured = await measuredSlice(target!, sliceMs);
        const used = process.cpuUsage(cpu);
        (attached ? ownCpu.attached : ownCpu.detached).push([used.user + used.system, measured.ops]);
        return measured;
      } finally {
        counting = false;
      }
    };
    const watched: SliceResult[] = [];
    const unwatched: SliceResult[] = [];
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const a: SliceResult[] = [];
      const b: SliceResult[] = [];
      for (const attached of ROUND) (attached ? a : b).push(await slice(attached));
      watched.push(...a);
      unwatched.push(...b);
      ratios.push(ratioOf(a, b));
      const cpuA = cpuPerCommand(a);
      const cpuB = cpuPerCommand(b);
      if (cpuA !== null && cpuB !== null) cpuRatios.push(cpuA / cpuB);
    }
    await detachPages(pages);
    pages = [];
    const verifiedWrites = await verifyTarget(target);
    const attachedMs = watched.reduce((n, s) => n + s.elapsedMs, 0);
    return {
      benchmark: 'cluster-inspected',
      measured: describe,
      control,
      clients: workers,
      pages: control ? 0 : PAGES,
      rounds,
      sliceMs,
      settleMs,
      attachedOpsPerSec: round(rate(watched)),
      detachedOpsPerSec: round(rate(unwatched)),
      attachedRatio: round(percentile(ratios, 50)),
      attachedRatioP25: round(percentile(ratios, 25)),
      attachedRatioP75: round(percentile(ratios, 75)),
      attachedRatioMin: round(Math.min(...ratios)),
      attachedRatioMax: round(Math.max(...ratios)),
      roundRatios: ratios.map((x) => round(x)),
      attachedCpuUsPerCommand: cpuPerCommand(watched),
      detachedCpuUsPerCommand: cpuPerCommand(unwatched),
      attachedBenchCpuUsPerCommand: perCommand(ownCpu.attached),
      detachedBenchCpuUsPerCommand: perCommand(ownCpu.detached),
      attachedCpuRatio: cpuRatios.length > 0 ? round(percentile(cpuRatios, 50)) : null,
      pushesPerPagePerSec: round((pushes * 1000) / PAGES / attachedMs),
      pushedBytesPerPagePerSec: round((pushedBytes * 1000) / PAGES / attachedMs),
      verifiedWrites,
    };
  } finally {
    await detachPages(pages).catch(() => {});
    await inspector?.close();
    if (target) await stopTarget(target);
  }
};
