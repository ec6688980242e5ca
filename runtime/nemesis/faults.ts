// The nemesis's faults and their seeded schedule. A schedule is drawn from the seed alone (which fault,
// when, for how long, and a number that picks the members at run time), so `chorus nemesis --seed S`
// replays the same schedule; which member is the leader when a fault starts depends on the run.

import { Random } from '../../machines/random.ts';
import type { NemesisCluster } from './cluster.ts';
import { between } from './network.ts';

export const FAULT_KINDS = [
  'isolate-leader',
  'isolate-follower',
  'asymmetric-cut',
  'split',
  'flap',
  'lose-replies',
  'kill-leader',
  'kill-follower',
  'kill-two',
  'kill-all',
  'pause-leader',
  'suspend',
  'transfer-leadership',
  'snapshot',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults grouped as the failure catalogue names them (the specs run one family each). */
export const FAULT_FAMILIES: Record<string, readonly FaultKind[]> = {
  partition: ['isolate-leader', 'isolate-follower', 'asymmetric-cut', 'split'],
  /** The leader's replies to clients dropped: commands commit, clients resend them (C2, C3). */
  resend: ['lose-replies'],
  flap: ['flap'],
  crash: ['kill-leader', 'kill-follower', 'kill-all'],
  minority: ['kill-two', 'kill-leader'],
  pause: ['pause-leader'],
  operator: ['suspend', 'transfer-leadership', 'snapshot'],
  all: FAULT_KINDS,
};

export interface FaultStep {
  readonly kind: FaultKind;
  /** When it is due, ms after the faults begin, if every fault before it ran on time (the run waits for
   *  the cluster to be whole and the clients served before each fault, so a slow recovery delays the rest). */
  readonly atMs: number;
  /** How long it lasts before it is healed (0 for one-shot actions). */
  readonly durationMs: number;
  /** Chooses the members it hits, at run time. */
  readonly pick: number;
  /** Quiet time after it is healed, before the next fault. */
  readonly gapAfterMs: number;
}

/** What happened when a step ran. */
export interface FaultRecord {
  readonly kind: FaultKind;
  /** ms after the workload started. */
  readonly startedMs: number;
  endedMs: number;
  targets: number[];
  /** What the fault did, or why it could not be applied. */
  note: string;
}

const DURATIONS: Record<FaultKind, readonly [number, number]> = {
  'isolate-leader': [1500, 3500],
  'isolate-follower': [1000, 3000],
  'asymmetric-cut': [1500, 3500],
  split: [1000, 2500],
  flap: [2000, 4000],
  'lose-replies': [2500, 4000],
  'kill-leader': [300, 2000],
  'kill-follower': [300, 2500],
  'kill-two': [500, 2500],
  'kill-all': [300, 1500],
  'pause-leader': [1000, 3000],
  suspend: [300, 1500],
  'transfer-leadership': [0, 0],
  snapshot: [0, 0],
};

/** Faults that need at least five members. */
const NEEDS_FIVE: ReadonlySet<FaultKind> = new Set(['kill-two']);

/**
 * The steps for one run: faults from `kinds`, back to back with a quiet gap after each (so the cluster
 * recovers and each fault's availability gap can be told apart), within `durationMs`.
 */
export const makeSchedule = (
  seed: number,
  kinds: readonly FaultKind[],
  durationMs: number,
  members: number,
): FaultStep[] => {
  const usable = kinds.filter((kind) => members >= 5 || !NEEDS_FIVE.has(kind));
  if (usable.length === 0) throw new RangeError(`no fault among ${kinds.join(', ')} fits ${members} members`);
  const random = new Random(seed ^ 0x6e656d65);
  const steps: FaultStep[] = [];
  let at = 1000;
  // Every kind in turn, each round in a seeded order, so a short run still meets each of them.
  const bag: FaultKind[] = [];
  while (at < durationMs) {
    if (bag.length === 0) {
      const round = [...usable];
      while (round.length > 0) bag.push(round.splice(random.int(0, round.length - 1), 1)[0]);
    }
    const kind = bag.shift()!;
    const [low, high] = DURATIONS[kind];
    const duration = Math.min(random.int(low, high), Math.max(0, durationMs - at));
    const gapAfterMs = random.int(1000, 2000);
    steps.push({ kind, atMs: at, durationMs: duration, pick: random.uint32(), gapAfterMs });
    at += duration + gapAfterMs;
  }
  return steps;
};

export const formatStep = (step: FaultStep): string =>
  `${(step.atMs / 1000).toFixed(1).padStart(6)} s  ${step.kind.padEnd(20)} ${step.durationMs} ms`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The ready leader, waiting up to `ms` for one; null when none appears. */
const leaderWithin = async (cluster: NemesisCluster, ms: number): Promise<number | null> => {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const leader = cluster.leader();
    if (leader !== null) return leader;
    await sleep(20);
  }
  return null;
};

/** Members other than `leader`, in id order. */
const others = (cluster: NemesisCluster, leader: number): number[] =>
  Array.from({ length: cluster.size }, (_, id) => id).filter((id) => id !== leader);

/**
 * Run one step against the cluster: apply the fault, hold it for its duration, heal it. Never throws for
 * a fault that could not be applied (no leader, the tool refused): the record says why.
 */
export const runStep = async (
  cluster: NemesisCluster,
  step: FaultStep,
  now: () => number,
): Promise<FaultRecord> => {
  const random = new Random(step.pick);
  const leader = (await leaderWithin(cluster, 3000)) ?? random.int(0, cluster.size - 1);
  const followers = others(cluster, leader);
  // A follower that answers the tool and is caught up, when there is one (a transfer to a member still
  // catching up after a restart is refused by the leader).
  const caughtUp = followers.filter((id) => cluster.ready(id));
  const follower = random.pick(caughtUp.length > 0 ? caughtUp : followers);
  const record: FaultRecord = { kind: step.kind, startedMs: now(), endedMs: 0, targets: [], note: '' };
  const set = (targets: number[], note: string) => {
    record.targets = targets;
    record.note = note;
  };
  try {
    switch (step.kind) {
      case 'isolate-leader':
      case 'isolate-follower': {
        const target = step.kind === 'isolate-leader' ? leader : follower;
        set([target], `member ${target} cut off from its peers (clients still reach it)`);
        cluster.links.set(between([target], others(cluster, target)));
        await sleep(step.durationMs);
        cluster.links.heal();
        break;
      }
      case 'asymmetric-cut': {
        const outbound = random.chance(0.5);
        const [from, to] = outbound ? [leader, follower] : [follower, leader];
        set([from, to], `one-way cut: member ${from} -> member ${to} dropped`);
        cluster.links.set([[from, to]]);
        await sleep(step.durationMs);
        cluster.links.heal();
        break;
      }
      case 'split': {
        const ids = Array.from({ length: cluster.size }, (_, id) => id);
        const groups =
          cluster.size >= 5 ? [ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)] : ids.map((i) => [i]);
        set(ids, `split with no majority: ${groups.map((g) => `{${g.join(',')}}`).join(' ')}`);
        cluster.links.set(groups.flatMap((g, i) => groups.slice(i + 1).flatMap((h) => between(g, h))));
        await sleep(step.durationMs);
        cluster.links.heal();
        break;
      }
      case 'flap': {
        set([leader, follower], `link between member ${leader} and member ${follower} flapping`);
        const end = performance.now() + step.durationMs;
        let cut = false;
        let toggles = 0;
        while (performance.now() < end) {
          cut = !cut;
          toggles++;
          cluster.links.set(cut ? between([leader], [follower]) : []);
          await sleep(random.int(100, 400));
        }
        cluster.links.heal();
        record.note += ` (${toggles} toggles)`;
        break;
      }
      case 'lose-replies': {
        set(
          [leader],
          `member ${leader}'s packets to the clients dropped (their commands still arrive and commit)`,
        );
        cluster.links.mute([leader]);
        await sleep(step.durationMs);
        cluster.links.heal();
        break;
      }
      case 'kill-leader':
      case 'kill-follower':
      case 'kill-two':
      case 'kill-all': {
        const all = Array.from({ length: cluster.size }, (_, id) => id);
        const targets =
          step.kind === 'kill-leader'
            ? [leader]
            : step.kind === 'kill-follower'
              ? [follower]
              : step.kind === 'kill-two'
                ? [leader, follower, random.pick(all.filter((id) => id !== follower))]
                    .slice(random.int(0, 1))
                    .slice(0, 2)
                : all;
        const unique = [...new Set(targets)].sort();
        set(
          unique,
          `SIGKILL member${unique.length > 1 ? 's' : ''} ${unique.join(', ')}; restart after ${step.durationMs} ms`,
        );
        await Promise.all(unique.map((id) => cluster.kill(id)));
        await sleep(step.durationMs);
        for (const id of unique) cluster.restart(id);
        break;
      }
      case 'pause-leader': {
        set([leader], `SIGSTOP member ${leader}; SIGCONT after ${step.durationMs} ms`);
        cluster.pause(leader);
        await sleep(step.durationMs);
        cluster.resume(leader);
        break;
      }
      case 'suspend': {
        set([leader], `tool suspend on member ${leader}; resume after ${step.durationMs} ms`);
        await cluster.tool(leader, 'suspend');
        await sleep(step.durationMs);
        await resumeSuspended(cluster);
        break;
      }
      case 'transfer-leadership': {
        set([leader, follower], `tool transfer-leadership from member ${leader} --to ${follower}`);
        await cluster.tool(leader, 'transfer-leadership', follower);
        break;
      }
      case 'snapshot': {
        const all = Array.from({ length: cluster.size }, (_, id) => id);
        const ready = all.filter((id) => cluster.ready(id));
        const target = ready.length > 0 ? random.pick(ready) : leader;
        set([target], `tool snapshot on member ${target}`);
        const result = (await cluster.tool(target, 'snapshot')) as { snapshotIndex?: number };
        record.note += ` (snapshot at ${result.snapshotIndex ?? '?'})`;
        break;
      }
    }
  } catch (error) {
    record.note += ` — not applied in full: ${(error as Error).message}`;
    cluster.links.heal();
    if (step.kind === 'suspend') await resumeSuspended(cluster).catch(() => {});
  }
  record.endedMs = now();
  return record;
};

/** Resume whichever running member reports SUSPENDED (the suspend is a cluster action: ask each one). */
export const resumeSuspended = async (cluster: NemesisCluster): Promise<void> => {
  for (let id = 0; id < cluster.size; id++) {
    if (!cluster.running(id) || cluster.paused.has(id)) continue;
    const status = await cluster.status(id).catch(() => null);
    if (status?.moduleState === 'SUSPENDED') await cluster.tool(id, 'resume').catch(() => {});
  }
};
