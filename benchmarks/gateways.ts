// Gateways: how long after a gateway process is SIGKILLed its parties are open on the others (G2), and how
// long the planner takes for 10,000 parties × 50 gateways (benchmarks/gateways-plan.ts).
//
// A local 3-member cluster hosting the registry (default settings; the session timeout can be shortened,
// below), three real gateway processes sharing 300 parties and the stand-in as every party's remote end.
// Each kill: the gateway holding the most parties is SIGKILLed; a sample is the ms from the SIGKILL until
// the last of its parties is open on another gateway (the stand-in sees the connection), split into the
// first reopen (the registry noticed the loss) and the spread after it. The killed gateway is started again
// (and has a session) before the next kill. The baseline is the gateways' closeOnDisconnectMs (default):
// the leader closes a gateway's session that long after it saw its connection close, the earliest its parties
// may move; a ratio near 1 means the cluster, the registry and the gateways add little to it. (Before that
// fast path, the baseline was the session timeout, 10 s by default.)
//
// Then the cluster leader is SIGKILLed as many times: every gateway loses its cluster connection and drops
// its parties at once (close on disconnect), resumes its session on the new leader and reopens what the
// registry still gives it. A sample is the ms from the SIGKILL until every party is open again (the gap a
// leader change costs the parties); the old leader is restarted before the next kill. Through both phases
// the stand-in counts any moment two connections were live for one party (`overlaps`, which must be 0).
//
//   npx chorus bench gateways --json [--runs 5]
//   CHORUS_BENCH_SESSION_TIMEOUT_MS=2500 npx chorus bench gateways   (a shorter session timeout than the default)

import { performance } from 'node:perf_hooks';
import { DEFAULT_CLOSE_ON_DISCONNECT_MS } from '../gateway/config.ts';
import { GatewayProcess, REGISTRY_MODULE, registry } from '../gateway/local-gateway.ts';
import { StandIn } from '../gateway/stand-in.ts';
import { ChorusClient } from '../runtime/client/client.ts';
import { clusterConfigSchema } from '../runtime/config.ts';
import { LocalCluster } from '../runtime/local-cluster.ts';
import { measurePlanTime } from './gateways-plan.ts';
import type { BenchOptions, BenchResult } from './harness.ts';
import { percentile, round } from './harness.ts';

export const describe =
  'ms from SIGKILL of the gateway owning the most parties (at least 100 of 300) to the last of them open on another gateway (median, p99 over several kills; 3 members, 3 gateways, the stand-in), against the gateways closeOnDisconnectMs (the leader closes the session of a killed gateway that long after its connection closed); ms from SIGKILL of the cluster leader until every party is open again (as many kills); two live connections for one party seen by the stand-in through both (overlaps); plus plan time for 10,000 parties × 50 gateways';

const PARTIES = 300;
const RULES = {
  filters: [{ kind: 'capacity' }],
  scores: [
    { kind: 'least-loaded', weight: 1 },
    { kind: 'stickiness', weight: 0.1 },
  ],
  rebalance: { movesPerRound: 100, pauseMs: 200, imbalanceThreshold: 0.1, settlingMs: 0 },
};

const until = async (check: () => boolean, what: string, timeoutMs: number): Promise<void> => {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`bench gateways: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

export const run = async (options: BenchOptions): Promise<BenchResult> => {
  const runs = options.runs === undefined ? 5 : Number(options.runs);
  const defaults = clusterConfigSchema.parse({
    members: [{ id: 0, host: '127.0.0.1', clientPort: 1, peerPort: 2 }],
  });
  const fromEnv = process.env.CHORUS_BENCH_SESSION_TIMEOUT_MS;
  const sessionTimeoutMs = fromEnv === undefined ? defaults.sessionTimeoutMs : Number(fromEnv);
  if (!(Number.isInteger(sessionTimeoutMs) && sessionTimeoutMs > 0)) {
    throw new RangeError(`CHORUS_BENCH_SESSION_TIMEOUT_MS must be a whole number of ms, got ${fromEnv}`);
  }
  const standIn = await StandIn.start({ livenessMs: Math.min(1_000, sessionTimeoutMs / 2) });
  const cluster = await LocalCluster.start({
    members: 3,
    overrides: { services: REGISTRY_MODULE, workerShards: 1, sessionTimeoutMs },
  });
  const gateways: GatewayProcess[] = [];
  let operator: ChorusClient | null = null;
  try {
    await cluster.until(() => cluster.leader() !== null, 'a leader', 60_000);
    operator = await ChorusClient.connect({ endpoints: cluster.endpoints(), commandTimeoutMs: 30_000 });
    const ids = Array.from({ length: PARTIES }, (_, i) => `party-${String(i).padStart(4, '0')}`);
    await registry(operator, {
      type: 'SET_PARTIES',
      parties: ids.map((id) => ({ id, endpoint: standIn.endpoint })),
    });
    await registry(operator, { type: 'APPLY_RULES', rules: RULES });
    for (const name of ['gw-a', 'gw-b', 'gw-c']) {
      gateways.push(
        GatewayProcess.start({
          name,
          capacity: 150,
          endpoints: cluster.endpoints(),
          sessionTimeoutMs,
          heartbeatMs: 150,
        }),
      );
    }
    const held = (name: string) => [...standIn.holders().values()].filter((g) => g === name).length;
    // Every party open and every gateway up with a session. 300 parties on three gateways: the busiest
    // holds at least 100 whatever the rebalancing has done (its figure is partiesPerKill).
    const ready = () =>
      standIn.holders().size === PARTIES &&
      gateways.every((g) => g.running && g.find(/^session open$/).length > 0);
    const firstAssignStart = performance.now();
    await until(ready, 'every party open', 120_000);
    const firstAssignmentMs = performance.now() - firstAssignStart;

    const samples: { totalMs: number; firstMs: number; owned: number }[] = [];
    for (let kill = 0; kill < runs; kill++) {
      const victim = [...gateways].sort((a, b) => held(b.name) - held(a.name))[0];
      const owned = [...standIn.holders()].filter(([, g]) => g === victim.name).map(([p]) => p);
      const killedAt = performance.now();
      await victim.signal('SIGKILL');
      let firstAt = 0;
      await until(
        () => {
          const holders = standIn.holders();
          const moved = owned.filter((p) => {
            const h = holders.get(p);
            return h !== undefined && h !== victim.name;
          }).length;
          if (moved > 0 && firstAt === 0) firstAt = performance.now();
          return moved === owned.length;
        },
        `the parties of ${victim.name} open elsewhere`,
        10 * sessionTimeoutMs + 30_000,
      );
      const doneAt = performance.now();
      samples.push({ totalMs: doneAt - killedAt, firstMs: firstAt - killedAt, owned: owned.length });
      const from = victim.records.length;
      victim.spawn();
      await until(
        () => ready() && victim.find(/^session open$/, from).length > 0,
        'the killed gateway back with a session',
        10 * sessionTimeoutMs + 60_000,
      );
    }
    // The cluster leader SIGKILLed: every party open again after each.
    const leaderGaps: number[] = [];
    for (let kill = 0; kill < runs; kill++) {
      const leader = await cluster.waitForLeader(60_000);
      const killedAt = performance.now();
      await cluster.kill(leader);
      await until(() => cluster.leader() !== null && cluster.leader() !== leader, 'a new leader', 60_000);
      // The gateways drop everything on the leader's loss: wait until the drop shows, then until all reopen.
      await until(() => standIn.holders().size < PARTIES, 'the gateways dropping', 10_000).catch(() => {});
      await until(() => standIn.holders().size === PARTIES, 'every party open again', 120_000);
      leaderGaps.push(performance.now() - killedAt);
      cluster.startMember(leader);
      await until(() => cluster.leader() !== null && ready(), 'the old leader back', 120_000);
    }
    const totals = samples.map((s) => s.totalMs);
    const plan = measurePlanTime({ samples: 10, warmup: 2 });
    const median = percentile(totals, 50);
    return {
      benchmark: 'gateways',
      measured: describe,
      kills: samples.length,
      partiesPerKill: round(
        percentile(
          samples.map((s) => s.owned),
          50,
        ),
      ),
      sessionTimeoutMs,
      closeOnDisconnectMs: DEFAULT_CLOSE_ON_DISCONNECT_MS,
      reassignMedianMs: round(median),
      reassignP99Ms: round(percentile(totals, 99)),
      firstReopenMedianMs: round(
        percentile(
          samples.map((s) => s.firstMs),
          50,
        ),
      ),
      spreadMedianMs: round(
        percentile(
          samples.map((s) => s.totalMs - s.firstMs),
          50,
        ),
      ),
      ratioToCloseOnDisconnect: round(median / DEFAULT_CLOSE_ON_DISCONNECT_MS),
      ratioToSessionTimeout: round(median / sessionTimeoutMs),
      firstAssignmentMs: round(firstAssignmentMs),
      leaderKills: leaderGaps.length,
      leaderKillAllOpenAgainMedianMs: round(percentile(leaderGaps, 50)),
      leaderKillAllOpenAgainP99Ms: round(percentile(leaderGaps, 99)),
      overlaps: standIn.overlaps.length,
      // Each overlap as the stand-in saw it (ms on its clock): what to look for in the gateways' logs.
      overlapDetails: standIn.overlaps.map(({ party, connections }) =>
        connections
          .map(
            (c) =>
              `${party} epoch ${c.epoch} by ${c.gateway} [${round(c.openedAt)}, ${c.closedAt === null ? 'open' : round(c.closedAt)}]`,
          )
          .join(' and '),
      ),
      plan,
    };
  } finally {
    await Promise.all(gateways.map((g) => g.signal('SIGKILL')));
    await operator?.close().catch(() => {});
    await cluster.close();
    await standIn.close();
  }
};
