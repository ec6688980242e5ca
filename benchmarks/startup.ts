// Start-up: how long a CLI command takes to answer and a member to become ready, for the build this
// benchmark runs from — the TypeScript sources through tsx (`npx chorus bench startup` in a checkout) or
// the JavaScript in dist/ (`node dist/runtime/cli.js bench startup`, or the installed package). Every
// figure is a median (and p99 by nearest rank) over several runs, with the ratio to `node -e 0` measured
// in the same run, since these machines are shared and noisy. Run it from both builds to compare them.
//
// - cliHelp, configCheck: `chorus --help` and `chorus config check FILE`, spawn to exit.
// - memberReady: a single member restarted (SIGKILL, then started again on its data), spawn to
//   LEADER_READY (store opened and validated, listening, elected).
// - servicesMemberReady: the same with a services module (examples/counter-service) on worker shards,
//   spawn to LEADER_READY (which waits for the shards to have replayed).
// - followerJoined: in a running 3-member cluster, a follower SIGKILLed and started again, spawn to
//   its election CLOSED (it follows the leader; FOLLOWER_READY is passed only when it had to catch up).
//
//   npx chorus bench startup --json [--runs N]

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chorusCommand, fromSources, moduleUrl } from '../runtime/build-kind.ts';
import { LocalCluster } from '../runtime/local-cluster.ts';
import { type BenchOptions, type BenchResult, percentile, round } from './harness.ts';

export const describe =
  'ms from spawn to answer for `node -e 0` (baseline), `chorus --help` and `chorus config check`, and from spawn to ready for a single member (LEADER_READY; also with a services module on worker shards) and a follower restarted in a 3-member cluster (its election CLOSED, following the leader); medians and p99 over --runs, with ratios to the baseline';

/** Generous: a member that has not become ready by then is a failure, not a sample. */
const READY_TIMEOUT_MS = 30_000;

const runCommand = (argv: readonly string[]): number => {
  const started = performance.now();
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  const ms = performance.now() - started;
  if (result.status !== 0) {
    throw new Error(`\`${argv.join(' ')}\` exited ${result.status}: ${result.stderr.trim()}`);
  }
  return ms;
};

/**
 * A cluster whose members' election states can be awaited as they are logged (a state such as
 * LEADER_READY lasts a moment before CLOSED, too short to poll for).
 */
const watchedCluster = async (
  options: Parameters<typeof LocalCluster.start>[0],
): Promise<{ cluster: LocalCluster; timeToState: (id: number, state: string) => Promise<number> }> => {
  let waiting: { id: number; state: string; reached: () => void } | null = null;
  const cluster = await LocalCluster.start({
    ...options,
    onRecord: (id, record) => {
      if (
        waiting?.id === id &&
        record.to === waiting.state &&
        String(record.msg).startsWith('ELECTION_STATE')
      )
        waiting.reached();
    },
  });
  /** Start member `id` and resolve with the ms until it logs the election state `state`. */
  const timeToState = (id: number, state: string): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const timer = setTimeout(
        () => reject(new Error(`member ${id} not ${state} within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      waiting = {
        id,
        state,
        reached: () => {
          clearTimeout(timer);
          waiting = null;
          resolve(performance.now() - started);
        },
      };
      cluster.startMember(id);
    });
  return { cluster, timeToState };
};

const singleMemberReady = async (overrides: Record<string, unknown>): Promise<number> => {
  // The first start creates the store; the sample is a restart on it.
  const { cluster, timeToState } = await watchedCluster({ members: 1, overrides });
  try {
    await cluster.waitForLeader(READY_TIMEOUT_MS);
    await cluster.kill(0);
    return await timeToState(0, 'LEADER_READY');
  } finally {
    await cluster.close();
  }
};

const followerRestarts = async (runs: number): Promise<number[]> => {
  const { cluster, timeToState } = await watchedCluster({ members: 3 });
  try {
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const leader = await cluster.waitForLeader(READY_TIMEOUT_MS);
      const follower = (leader + 1) % 3;
      await cluster.until(
        () => cluster.views[follower].electionState === 'CLOSED',
        `member ${follower} settled`,
        READY_TIMEOUT_MS,
      );
      await cluster.kill(follower);
      samples.push(await timeToState(follower, 'CLOSED'));
    }
    return samples;
  } finally {
    await cluster.close();
  }
};

const summary = (name: string, samples: readonly number[], baseline: number): Record<string, number> => {
  const median = percentile(samples, 50);
  return {
    [`${name}MedianMs`]: round(median),
    [`${name}P99Ms`]: round(percentile(samples, 99)),
    [`${name}VsBaseline`]: round(median / baseline),
  };
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const runs = options.runs === undefined ? 7 : Number(options.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`--runs must be a whole number >= 1`);
  const chorus = chorusCommand();
  const scratch = mkdtempSync(join(tmpdir(), 'chorus-startup-'));
  try {
    const configFile = join(scratch, 'cluster.json');
    writeFileSync(configFile, JSON.stringify({ members: '0,127.0.0.1:9101:9102' }));
    const baseline: number[] = [];
    const help: number[] = [];
    const check: number[] = [];
    for (let i = 0; i < runs; i++) {
      baseline.push(runCommand([process.execPath, '-e', '0']));
      help.push(runCommand([...chorus, '--help']));
      check.push(runCommand([...chorus, 'config', 'check', configFile]));
    }
    const services = fileURLToPath(moduleUrl('../examples/counter-service', import.meta.url));
    const member: number[] = [];
    const servicesMember: number[] = [];
    for (let i = 0; i < runs; i++) {
      member.push(await singleMemberReady({}));
      servicesMember.push(await singleMemberReady({ services }));
    }
    const follower = await followerRestarts(runs);
    const base = percentile(baseline, 50);
    return {
      benchmark: 'startup',
      measured: describe,
      build: fromSources ? 'sources through tsx' : 'dist (JavaScript)',
      command: chorus.join(' '),
      runs,
      // How busy the machine was: absolute times grow with it; the ratios to the baseline much less.
      cpus: cpus().length,
      loadAverage1m: round(loadavg()[0]),
      baselineMedianMs: round(base),
      ...summary('cliHelp', help, base),
      ...summary('configCheck', check, base),
      ...summary('memberReady', member, base),
      ...summary('servicesMemberReady', servicesMember, base),
      ...summary('followerJoined', follower, base),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
};
