// What watching costs: `bench cluster`'s workload (256-byte KV puts from closed-loop workers, acknowledged
// once committed and applied) on one local 3-member cluster, with the inspector (`chorus inspect`, its own
// process, as a user runs it) and two live pages attached to it, against none attached, in the same run. A page is a
// WebSocket on /api/live, as the page opens it, which makes the inspector open every member's /live; when
// the last page leaves, the members' sockets close and the members push nothing. Both arms run with every
// member's admin HTTP listener and metrics on.
//
// How it is measured, since single slices on a loaded 2-core machine swing by ±50% (snapshots, GC, the
// other processes): the load never stops between slices. Before each measured slice comes a settling period
// (`settleMs`, load running, not measured) in which pages attach or leave, so both arms start from a running
// cluster and neither pays for the attach. A round is four slices in the order attached, detached, detached,
// attached (ABBA: a steady drift cancels out). `attachedRatio` (goal ≥ 0.95) is the throughput of every
// attached slice together over that of every detached slice (commands over time, summed): the rounds' noise
// averages out there. Each round's own ratio is reported too, as the median over the rounds
// (`roundRatioMedian`) with the quartiles and the extremes: the spread. CPU per command is reported for the members and for this process (the load, the inspector, the
// pages) in each arm. Control rounds are interleaved with the measured ones in the same run: the same four
// slices, with nothing attached in the "attached" arm — what the method reports when the arms are the same
// (its bias and noise floor on this machine). `controlRatio` is their median, and `attachedVsControl` the
// attached ratio over it. CHORUS_BENCH_CONTROL=1 makes every round a control round.
//
//   npx chorus bench cluster-inspected --json [--runs ROUNDS (9)]
//   CHORUS_BENCH_CONTROL=1 npx chorus bench cluster-inspected --json     # the control: nothing attached

import { type ChildProcess, spawn } from 'node:child_process';
import { WebSocket } from 'ws';
import { chorusCommand } from '../runtime/build-kind.ts';
import { endpointsOf } from '../runtime/inspector/server.ts';
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
  'bench cluster throughput (3 members, 256-byte puts, N closed-loop workers) with the inspector and two live pages attached, against none attached: rounds of four 1 s slices (attached, detached, detached, attached) with the load running throughout; the attached slices’ throughput over the detached slices’ (each round’s ratio as the spread), and the same for interleaved control rounds that attach nothing (the method’s own bias and noise)';

/** Live pages attached in the watched slices. */
export const PAGES = 2;
/** One round's arms, in order: attached (true) and detached (false), ABBA. */
const ROUND = [true, false, false, true] as const;

/** Attach `count` pages to the inspector's /api/live; resolves once each has had every member's state. */
/** `chorus inspect` for the cluster, in its own process: its URL once it listens. */
const startInspector = (cluster: string): Promise<{ child: ChildProcess; url: string }> =>
  new Promise((resolve, reject) => {
    const [command, ...args] = chorusCommand();
    const child = spawn(command, [...args, 'inspect', '--cluster', cluster], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const match = /inspector at (http:\/\/\S+)/.exec(out);
      if (match) resolve({ child, url: match[1].endsWith('/') ? match[1] : `${match[1]}/` });
    });
    child.once('exit', (code) =>
      reject(new Error(`chorus inspect exited (${code}) before it listened: ${out}`)),
    );
  });

const attachPages = async (
  inspector: { readonly url: string },
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
  let inspector: { child: ChildProcess; url: string } | null = null;
  let pages: WebSocket[] = [];
  try {
    target = await startTarget(3, workers, logLevel);
    inspector = await startInspector(
      endpointsOf(target.cluster.config)
        .map((m) => `${m.id}=${m.url}`)
        .join(','),
    );
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
    const slice = async (attached: boolean, controlRound: boolean): Promise<SliceResult> => {
      const want = attached && !control && !controlRound ? PAGES : 0;
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
      counting = attached && !controlRound;
      const cpu = process.cpuUsage();
      try {
        const measured = await measuredSlice(target!, sliceMs);
        const used = process.cpuUsage(cpu);
        if (!controlRound)
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
    const controlRatios: number[] = [];
    const controlA: SliceResult[] = [];
    const controlB: SliceResult[] = [];
    /** One round's four slices (ABBA): the attached arm's and the detached arm's. */
    const roundOf = async (controlRound: boolean) => {
      const a: SliceResult[] = [];
      const b: SliceResult[] = [];
      for (const attached of ROUND) (attached ? a : b).push(await slice(attached, controlRound));
      return { a, b };
    };
    for (let r = 0; r < rounds; r++) {
      // A control round first (unless every round is one): the same slices, nothing attached.
      if (!control) {
        const { a, b } = await roundOf(true);
        controlA.push(...a);
        controlB.push(...b);
        controlRatios.push(ratioOf(a, b));
      }
      const { a, b } = await roundOf(false);
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
      attachedRatio: round(rate(watched) / rate(unwatched)),
      roundRatioMedian: round(percentile(ratios, 50)),
      roundRatioP25: round(percentile(ratios, 25)),
      roundRatioP75: round(percentile(ratios, 75)),
      roundRatioMin: round(Math.min(...ratios)),
      roundRatioMax: round(Math.max(...ratios)),
      roundRatios: ratios.map((x) => round(x)),
      // The same over the control rounds' slices, and the attached ratio over it.
      controlRatio: controlA.length > 0 ? round(rate(controlA) / rate(controlB)) : null,
      controlRoundRatioMedian: controlRatios.length > 0 ? round(percentile(controlRatios, 50)) : null,
      controlRoundRatioP25: controlRatios.length > 0 ? round(percentile(controlRatios, 25)) : null,
      controlRoundRatioP75: controlRatios.length > 0 ? round(percentile(controlRatios, 75)) : null,
      attachedVsControl:
        controlA.length > 0
          ? round(rate(watched) / rate(unwatched) / (rate(controlA) / rate(controlB)))
          : null,
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
    if (inspector) {
      const { child } = inspector;
      child.removeAllListeners('exit');
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    }
    if (target) await stopTarget(target);
  }
};
