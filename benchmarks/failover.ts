// Failover: how long clients go without an acknowledged write when the leader is SIGKILLed (N2, C1, C3).
// A local 3-member cluster with default settings and closed-loop writers in this process; the leader is
// killed several times (restarted as a follower in between), and each sample is the time from the
// SIGKILL to the first write acknowledged to a client that saw its connection to the old leader drop —
// so a reply already on its way from the old leader never counts as recovery. At the end every
// acknowledged write must be readable and durable on a quorum (benchmarks/cluster.ts does the checks).
// `electedMs` splits each sample: SIGKILL to the first surviving member closing its election.
//
//   npx chorus bench failover --json

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { unpack } from 'msgpackr';
import { ChorusClient } from '../runtime/client/client.ts';
import { LocalCluster } from '../runtime/local-cluster.ts';
import {
  type AckedWrite,
  COMMAND_BYTES,
  closeSessions,
  putCommand,
  verifyDurable,
  verifyReadable,
  WORKERS_PER_SESSION,
} from './cluster.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { percentile, round } from './harness.ts';

export const describe =
  'ms from SIGKILL of the leader of a local 3-member cluster (default timeouts) to the first write acknowledged to a client that lost its connection to that leader; closed-loop writers, several kills, median and max';

/** One client session, with the moment it last lost its connection. */
interface Session {
  client: ChorusClient | null;
  /** performance.now() when the session last left CONNECTED (0: never). */
  droppedAt: number;
}

const positive = (options: BenchOptions, name: string, fallback: number): number => {
  const value = options[name] === undefined ? fallback : Number(options[name]);
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`--${name} must be a positive number, got ${String(options[name])}`);
  }
  return value;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const kills = Math.floor(positive(options, 'kills', 5));
  const workers = Math.floor(positive(options, 'clients', 8));
  const settleMs = positive(options, 'settleMs', 500);
  const dir = mkdtempSync(join(tmpdir(), 'chorus-failover-'));
  // When each member's current process last closed an election (it serves as leader or follower).
  const electionClosedAt = new Map<number, number>();
  const cluster = await LocalCluster.start({
    members: 3,
    dir,
    removeOnClose: false,
    onRecord: (id, record) => {
      if (String(record.msg ?? '').startsWith('ELECTION_STATE_CHANGE') && record.to === 'CLOSED') {
        electionClosedAt.set(id, performance.now());
      }
    },
  });
  try {
    await cluster.waitForLeader(20_000);
    const sessions: Session[] = [];
    for (let i = 0; i < Math.ceil(workers / WORKERS_PER_SESSION); i++) {
      const session: Session = { client: null, droppedAt: 0 };
      let previous = '';
      session.client = await ChorusClient.connect({
        endpoints: cluster.endpoints(),
        seed: 7000 + i,
        maxInFlight: WORKERS_PER_SESSION,
        commandTimeoutMs: 30_000,
        onStateChange: (state) => {
          if (previous === 'CONNECTED' && state !== 'CONNECTED') session.droppedAt = performance.now();
          previous = state;
        },
      });
      sessions.push(session);
    }

    // The kill being measured: when it was sent, and the first qualifying acknowledgement.
    let killedAt = 0;
    let recoveredAt = 0;
    let lastAckAt = 0;
    const acked: AckedWrite[] = [];
    const lastByWorker: (AckedWrite | null)[] = new Array(workers).fill(null);
    let running = true;
    const worker = async (w: number): Promise<void> => {
      const session = sessions[w % sessions.length];
      for (let seq = 0; running; seq++) {
        const write = { key: `f-w${w}-k${seq % 64}`, tag: `fw${w}:${seq}:` };
        const reply = unpack(await session.client!.send(putCommand(write.key, write.tag))) as {
          ok?: boolean;
        };
        const now = performance.now();
        if (reply?.ok !== true) throw new Error(`put ${write.tag} answered ${JSON.stringify(reply)}`);
        acked.push(write);
        lastByWorker[w] = write;
        lastAckAt = now;
        if (killedAt > 0 && recoveredAt === 0 && session.droppedAt >= killedAt) recoveredAt = now;
      }
    };
    const loops = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
    const failed = loops.then(() => {
      if (running) throw new Error('writers stopped early');
    });
    const guard = <T>(promise: Promise<T>) => Promise.race([promise, failed as Promise<never>]);
    const until = async (check: () => boolean, what: string, timeoutMs: number) =>
      guard(cluster.until(check, what, timeoutMs));

    const samples: number[] = [];
    // Kill to the first surviving member closing its election (new leader's term committed, or joined).
    const electedSamples: number[] = [];
    for (let k = 0; k < kills; k++) {
      // Steady state first: every member up with its election closed, and writes being acknowledged.
      await until(
        () => cluster.views.every((v) => v.running && electionClosedAt.has(v.id)),
        'every member to join the cluster',
        20_000,
      );
      await guard(sleep(settleMs));
      const steadySince = performance.now();
      await until(() => lastAckAt > steadySince, 'writes to be acknowledged before the kill', 10_000);
      const leader = cluster.leader();
      if (leader === null) throw new Error('no leader known before the kill');
      recoveredAt = 0;
      electionClosedAt.delete(leader);
      killedAt = performance.now();
      const exited = cluster.kill(leader);
      await until(() => recoveredAt > 0, `a write acknowledged after killing leader ${leader}`, 20_000);
      samples.push(recoveredAt - killedAt);
      const elected = [...electionClosedAt.values()].filter((t) => t > killedAt);
      electedSamples.push(Math.min(...elected) - killedAt);
      killedAt = 0;
      await guard(exited);
      cluster.startMember(leader);
    }

    running = false;
    await failed;
    const reader = sessions[0].client!;
    await verifyReadable(reader, lastByWorker);
    await closeSessions(sessions.map((s) => s.client!));
    await cluster.close();
    const verified = await verifyDurable(cluster, acked);
    return {
      benchmark: 'failover',
      measured: describe,
      recoverMs: round(percentile(samples, 50)),
      recoverMsMax: round(Math.max(...samples)),
      recoverMsSamples: samples.map((s) => round(s)),
      electedMs: round(percentile(electedSamples, 50)),
      electedMsSamples: electedSamples.map((s) => round(s)),
      kills,
      clients: workers,
      commandBytes: COMMAND_BYTES,
      electionTimeoutMs: cluster.config.electionTimeoutMs,
      leaderHeartbeatTimeoutMs: cluster.config.leaderHeartbeatTimeoutMs,
      verifiedWrites: verified,
    };
  } finally {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
};
