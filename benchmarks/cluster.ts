// Cluster throughput and latency: a local 3-member cluster of real `chorus member` processes, 256-byte
// KV puts from closed-loop workers in this process, each acknowledged only once committed (flushed on a
// quorum) and applied. The baseline is the same workload against one member with no followers, running
// at the same time: the load alternates between the two in short slices (3-member, 1-member, 1-member,
// 3-member, ...), so both see the same background load on a shared machine, and `replicationRatio` is
// the median of the per-pair ratios rather than a comparison of two runs minutes apart.
//
// CPU per command: all members' process CPU time (user + system, every thread, read from /proc/PID/stat)
// over the measured slices, divided by the commands acknowledged in them — the figure that does not depend
// on how busy the machine is (a 3-member etcd 3.4 spends about 320 µs per 256-byte put at 64 clients).
//
// After the measurement the benchmark proves nothing acknowledged was lost: it reads every worker's last
// key back through the cluster (a linearizable get through the log), then SIGKILLs the members and checks
// offline, in what each member would recover from (its snapshot and LMDB log), that every acknowledged
// write is durable on a quorum.
//
//   npx chorus bench cluster --clients 64 --json      (also --clients 1, --clients 256)

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { unpack } from 'msgpackr';
import { EntryKind } from '../actors/log/log-entry.ts';
import { decodeSessionMessage } from '../actors/log/session-message.ts';
import { decodeKvCommand, encodeKvCommand, KvService } from '../actors/services/kv.ts';
import { openMemberStore } from '../persistence/index.ts';
import { ChorusClient } from '../runtime/client/client.ts';
import { LocalCluster } from '../runtime/local-cluster.ts';
import { SERVICE_SNAPSHOT_ID } from '../runtime/member.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { percentile, processesCpuMicros, round } from './harness.ts';

export const describe =
  'committed-and-applied 256-byte KV puts per second and latency on a local 3-member cluster, from N closed-loop workers (one command in flight each) multiplexed 16 to a ChorusClient session; baseline: the same workload against 1 member with no followers, alternated with it in 1 s slices in the same run';

/** Encoded size of every command the benchmarks send. */
export const COMMAND_BYTES = 256;
/** Closed-loop workers per client session: the session's in-flight window (the KV dedups 16 per session). */
export const WORKERS_PER_SESSION = 16;
/** Distinct keys each worker cycles through, so the members' state stays bounded on long runs. */
const KEYS_PER_WORKER = 256;

/** One acknowledged write: the key and the tag its value starts with (unique per write). */
export interface AckedWrite {
  readonly key: string;
  readonly tag: string;
}

/** Padding length by (key length, tag length): probed once per shape, so a command costs one pack. */
const paddingByShape = new Map<string, number>();

/**
 * A KV put whose msgpack encoding is exactly COMMAND_BYTES long. The value starts with `tag` (unique per
 * write, ending in ':') and is padded; the tag is what the offline check looks for in the logs. Keys and
 * tags are ASCII, so the padding depends only on their lengths.
 */
export const putCommand = (key: string, tag: string): Uint8Array => {
  const encode = (n: number) => encodeKvCommand({ op: 'put', key, value: tag + 'x'.repeat(n) });
  const shape = `${key.length}/${tag.length}`;
  let n = paddingByShape.get(shape);
  if (n === undefined) {
    // The value's length prefix grows by a byte at 32 and by two at 256: probe the exact padding.
    n = Math.max(0, COMMAND_BYTES - encode(0).length);
    while (n > 0 && encode(n).length > COMMAND_BYTES) n--;
    paddingByShape.set(shape, n);
  }
  const bytes = encode(n);
  if (bytes.length !== COMMAND_BYTES) {
    throw new RangeError(`put command for key ${key} encodes to ${bytes.length} bytes, not ${COMMAND_BYTES}`);
  }
  return bytes;
};

/** The tag a write's value starts with: everything up to and including the second ':'. */
const tagOf = (value: string): string => value.slice(0, value.indexOf(':', value.indexOf(':') + 1) + 1);

/** Open `sessions` client sessions to a cluster, each with the benchmark's in-flight window. */
export const openSessions = (endpoints: readonly string[], sessions: number): Promise<ChorusClient[]> =>
  Promise.all(
    Array.from({ length: sessions }, (_, i) =>
      ChorusClient.connect({
        endpoints,
        seed: 1000 + i,
        maxInFlight: WORKERS_PER_SESSION,
        commandTimeoutMs: 30_000,
      }),
    ),
  );

/** A promise the workers wait on between slices, and the function that releases them. */
const newGate = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

/** What one measured slice of load did. */
export interface SliceResult {
  readonly ops: number;
  readonly elapsedMs: number;
  /** CPU time the members used during the slice, µs (undefined where it cannot be read). */
  readonly memberCpuMicros?: number;
}

/**
 * Closed-loop load: `workers` workers over the given sessions, each sending its next put as soon as the
 * previous one is acknowledged. The load runs only inside `runFor` slices; between slices each worker
 * finishes the command it has in flight (its acknowledgement is recorded, not measured) and waits.
 */
export class ClosedLoopLoad {
  /** Every acknowledged write, for the durability check. */
  readonly acked: AckedWrite[] = [];
  /** Each worker's last acknowledged write (the value its key must hold at the end). */
  readonly lastByWorker: (AckedWrite | null)[];
  /** Latency of every measured command, ms. */
  readonly latencies: number[] = [];
  private measuredOps = 0;
  private measuring = false;
  private active = false;
  private stopped = false;
  private gate = newGate();
  /** Settles when every worker has stopped; rejects with the first worker's failure. */
  private readonly finished: Promise<void>;

  constructor(
    clients: readonly ChorusClient[],
    workers: number,
    private readonly label: string,
  ) {
    this.lastByWorker = new Array(workers).fill(null);
    this.finished = Promise.all(
      Array.from({ length: workers }, (_, w) =>
        this.worker(clients[w % clients.length], w).catch((error: unknown) => {
          this.stopped = true; // one failure stops every worker
          this.gate.resolve();
          throw error;
        }),
      ),
    ).then(() => undefined);
    this.finished.catch(() => {}); // observed by runFor and stop
  }

  /** Let the workers run for `ms`, measured or not. */
  async runFor(ms: number, measure: boolean): Promise<SliceResult> {
    const opsBefore = this.measuredOps;
    this.active = true;
    this.measuring = measure;
    this.gate.resolve();
    const start = performance.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
      this.finished.then(() => {
        throw new Error(`${this.label}: the workers stopped during a slice`);
      }),
    ]);
    clearTimeout(timer);
    this.measuring = false;
    this.active = false;
    this.gate = newGate();
    return { ops: this.measuredOps - opsBefore, elapsedMs: performance.now() - start };
  }

  /** Stop every worker once its command in flight is answered. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.gate.resolve();
    await this.finished;
  }

  private async worker(client: ChorusClient, w: number): Promise<void> {
    for (let seq = 0; ; seq++) {
      while (!this.active && !this.stopped) await this.gate.promise;
      if (this.stopped) return;
      const write = {
        key: `${this.label}-w${w}-k${seq % KEYS_PER_WORKER}`,
        tag: `${this.label}w${w}:${seq}:`,
      };
      const command = putCommand(write.key, write.tag);
      const start = performance.now();
      const reply = unpack(await client.send(command)) as { ok?: boolean };
      if (reply?.ok !== true) throw new Error(`put ${write.tag} answered ${JSON.stringify(reply)}`);
      this.acked.push(write);
      this.lastByWorker[w] = write;
      if (this.measuring) {
        this.latencies.push(performance.now() - start);
        this.measuredOps++;
      }
    }
  }
}

/** Read each worker's key back through the cluster: it must hold that worker's last acknowledged value. */
export const verifyReadable = async (
  client: ChorusClient,
  lastByWorker: readonly (AckedWrite | null)[],
): Promise<void> => {
  await Promise.all(
    lastByWorker.map(async (write) => {
      if (write === null) return;
      const reply = unpack(await client.send(encodeKvCommand({ op: 'get', key: write.key }))) as {
        value: string | null;
      };
      if (typeof reply?.value !== 'string' || tagOf(reply.value) !== write.tag) {
        throw new Error(
          `acknowledged write ${write.tag} to ${write.key} is not readable: the key holds ${JSON.stringify(reply?.value?.slice(0, 40))}`,
        );
      }
    }),
  );
};

/**
 * With every member stopped: open each member's store (the start-up scan checks every checksum) and load
 * what a restart would load — its latest snapshot, then its log. Every key's last acknowledged write must
 * be in that state, and every earlier acknowledged write in the log (or under a snapshot that purged it),
 * each on at least a quorum of members. Returns the number of acknowledged writes checked.
 */
export const verifyDurable = async (cluster: LocalCluster, acked: readonly AckedWrite[]): Promise<number> => {
  const memberCount = cluster.config.members.length;
  const quorum = Math.floor(memberCount / 2) + 1;
  // Keys are private to one closed-loop worker, so the last acknowledged write to a key is its final value.
  const lastTagByKey = new Map<string, string>();
  for (const write of acked) lastTagByKey.set(write.key, write.tag);
  const finalHolders = new Map<string, number>();
  const logHolders = new Map<string, number>();
  let purgedMembers = 0;
  for (const member of cluster.config.members) {
    const store = await openMemberStore(cluster.memberDir(member.id), {
      mapSizeBytes: cluster.config.mapSizeBytes,
    });
    try {
      const plan = store.recoveryPlan();
      const serviceSnapshot = plan.snapshots.find((s) => s.entry.serviceId === SERVICE_SNAPSHOT_ID);
      const kv = serviceSnapshot
        ? KvService.restore(store.snapshots.load(serviceSnapshot.entry.snapshotId))
        : new KvService();
      if (store.log.firstIndex > 1) purgedMembers++;
      const inLog = new Set<string>();
      const batch = 4096;
      for (let from = store.log.firstIndex; from <= store.log.lastIndex; from += batch) {
        for (const entry of store.log.read(from, from + batch - 1)) {
          if (entry.index > kv.appliedIndex) kv.apply(entry);
          if (entry.kind !== EntryKind.SESSION_MESSAGE) continue;
          const command = decodeKvCommand(decodeSessionMessage(entry.payload).body);
          if (command.op === 'put') inLog.add(tagOf(command.value));
        }
      }
      for (const tag of inLog) logHolders.set(tag, (logHolders.get(tag) ?? 0) + 1);
      for (const [key, tag] of lastTagByKey) {
        const value = kv.get(key);
        if (value !== null && tagOf(value) === tag) finalHolders.set(key, (finalHolders.get(key) ?? 0) + 1);
      }
    } finally {
      await store.close();
    }
  }
  const lost = (what: string, count: number) =>
    new Error(
      `acknowledged write ${what} is held by ${count} of ${memberCount} members, fewer than a quorum of ${quorum}: data was lost`,
    );
  for (const [key, tag] of lastTagByKey) {
    const count = finalHolders.get(key) ?? 0;
    if (count < quorum) throw lost(`${tag} (the last to ${key})`, count);
  }
  for (const write of acked) {
    // A member whose log a snapshot purged holds older writes only inside that snapshot's state.
    const count = (logHolders.get(write.tag) ?? 0) + purgedMembers;
    if (count < quorum) throw lost(write.tag, count);
  }
  return acked.length;
};

export const numberOption = (options: BenchOptions, name: string, fallback: number): number => {
  const value = options[name];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new RangeError(`--${name} must be a positive number, got ${String(value)}`);
  }
  return n;
};

/** Close client sessions, waiting at most a second (after a failure the cluster may not answer). */
export const closeSessions = async (clients: readonly ChorusClient[]): Promise<void> => {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(clients.map((c) => c.close())),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
    }),
  ]);
  clearTimeout(timer);
};

/** A running cluster under test, with its client sessions and load. */
export interface Target {
  readonly cluster: LocalCluster;
  readonly dir: string;
  clients: ChorusClient[];
  load: ClosedLoopLoad | null;
}

export const startTarget = async (members: number, workers: number, logLevel: string): Promise<Target> => {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const cluster = await LocalCluster.start({ members, dir, removeOnClose: false, logLevel });
  const target: Target = { cluster, dir, clients: [], load: null };
  try {
    await cluster.waitForLeader(20_000);
    target.clients = await openSessions(cluster.endpoints(), Math.ceil(workers / WORKERS_PER_SESSION));
    target.load = new ClosedLoopLoad(target.clients, workers, `m${members}`);
    return target;
  } catch (error) {
    await stopTarget(target);
    throw error;
  }
};

/** Stop the load, read every worker's last write back, kill the members and check their logs offline. */
export const verifyTarget = async (target: Target): Promise<number> => {
  const load = target.load!;
  await load.stop();
  await verifyReadable(target.clients[0], load.lastByWorker);
  await closeSessions(target.clients);
  await target.cluster.close();
  return verifyDurable(target.cluster, load.acked);
};

export const stopTarget = async (target: Target): Promise<void> => {
  await closeSessions(target.clients);
  await target.cluster.close();
  rmSync(target.dir, { recursive: true, force: true });
};

export const rate = (slices: readonly SliceResult[]): number =>
  (slices.reduce((n, s) => n + s.ops, 0) * 1000) / slices.reduce((n, s) => n + s.elapsedMs, 0);

/** The members' summed process CPU so far, µs, or undefined if a member's cannot be read. */
const membersCpuMicros = (target: Target): number | undefined => {
  const pids = target.cluster.views.map((view) => view.process?.pid);
  return pids.every((pid) => pid !== undefined) ? processesCpuMicros(pids as number[]) : undefined;
};

/** One measured slice on `target`, with the CPU its members used meanwhile. */
export const measuredSlice = async (target: Target, ms: number): Promise<SliceResult> => {
  const before = membersCpuMicros(target);
  const slice = await target.load!.runFor(ms, true);
  const after = membersCpuMicros(target);
  return before === undefined || after === undefined ? slice : { ...slice, memberCpuMicros: after - before };
};

/** Members' CPU µs per command acknowledged over the slices, or null where CPU could not be read. */
export const cpuPerCommand = (slices: readonly SliceResult[]): number | null => {
  if (slices.some((s) => s.memberCpuMicros === undefined)) return null;
  const ops = slices.reduce((n, s) => n + s.ops, 0);
  return round(slices.reduce((n, s) => n + (s.memberCpuMicros as number), 0) / ops);
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const workers = Math.floor(numberOption(options, 'clients', 64));
  const durationMs = numberOption(options, 'durationMs', 5000);
  const sliceMs = numberOption(options, 'sliceMs', 1000);
  const warmupMs = numberOption(options, 'warmupMs', 1000);
  // Members log at info: LocalCluster follows roles from their log lines.
  const logLevel = String(options.logLevel ?? 'info');
  const targets: Target[] = [];
  try {
    targets.push(await startTarget(3, workers, logLevel));
    targets.push(await startTarget(1, workers, logLevel));
    const [three, single] = targets.map((t) => t.load!);
    await three.runFor(warmupMs, false);
    await single.runFor(warmupMs, false);
    const [threeTarget, singleTarget] = targets;
    const threeSlices: SliceResult[] = [];
    const singleSlices: SliceResult[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < Math.max(1, Math.round(durationMs / sliceMs)); i++) {
      // ABBA order, so neither configuration always runs right after the other's slice.
      const pair = i % 2 === 0 ? [threeTarget, singleTarget] : [singleTarget, threeTarget];
      const first = await measuredSlice(pair[0], sliceMs);
      const second = await measuredSlice(pair[1], sliceMs);
      const [a, b] = i % 2 === 0 ? [first, second] : [second, first];
      threeSlices.push(a);
      singleSlices.push(b);
      ratios.push(a.ops / a.elapsedMs / (b.ops / b.elapsedMs));
    }
    let verified = 0;
    for (const target of targets) verified += await verifyTarget(target);
    return {
      benchmark: 'cluster',
      measured: describe,
      clients: workers,
      sessions: Math.ceil(workers / WORKERS_PER_SESSION),
      commandBytes: COMMAND_BYTES,
      durationMs,
      sliceMs,
      opsPerSec: round(rate(threeSlices)),
      p50Ms: round(percentile(three.latencies, 50)),
      p99Ms: round(percentile(three.latencies, 99)),
      maxMs: round(percentile(three.latencies, 100)),
      cpuUsPerCommand: cpuPerCommand(threeSlices),
      singleMemberOpsPerSec: round(rate(singleSlices)),
      singleMemberP50Ms: round(percentile(single.latencies, 50)),
      singleMemberP99Ms: round(percentile(single.latencies, 99)),
      singleMemberCpuUsPerCommand: cpuPerCommand(singleSlices),
      replicationRatio: round(percentile(ratios, 50)),
      replicationRatioMin: round(Math.min(...ratios)),
      replicationRatioMax: round(Math.max(...ratios)),
      verifiedWrites: verified,
    };
  } finally {
    for (const target of targets) await stopTarget(target);
  }
};
