// Gateways at process level: a 3-member LocalCluster hosting the gateway registry, real gateway processes
// (`chorus gateway --config FILE`) and the remote-system stand-in (gateway/stand-in.ts) as the parties'
// endpoint. Faults are injected at the level the catalogue names: a gateway process SIGKILLed or
// SIGSTOPped (G2), gateways started apart (G3), the cluster leader SIGKILLed; through all of it the stand-in
// must never see two live connections for one party. Timeouts are derived from the configuration: the
// session timeout (shortened here) bounds when a lost gateway's parties may move.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DEFAULT_CLOSE_ON_DISCONNECT_MS, type GatewayConfigInput } from '../../gateway/config.ts';
import { StandIn } from '../../gateway/stand-in.ts';
import type { ChorusClient } from '../../runtime/client/client.ts';
import { connectClient, FAILOVER_MS, TestCluster } from '../runtime/cluster/support.ts';
import { eventually } from '../support/ports.ts';
import { Relay } from './relay.ts';
import { chorus, GatewayProcess, gatewayCli, REGISTRY_MODULE, registry, status } from './support.ts';

/**
 * The cluster's session timeout, shortened (default 10 s; the least the configuration allows is
 * 2 × (500 + 400) ms): short enough to keep the spec quick, long enough that a gateway process stalled
 * for a second or two on a loaded machine keeps its session.
 */
const SESSION_TIMEOUT_MS = 4_000;
/** The stand-in ends a silent connection after this: below the session timeout (see stand-in.ts). */
const LIVENESS_MS = 1_000;
/** A lost gateway's parties move once its session times out, then a plan, an OPEN and a connect: with margin. */
const MOVE_BOUND_MS = 2 * SESSION_TIMEOUT_MS + 2 * FAILOVER_MS + 10_000;
/** The gateways ask the leader to close their session this long after their connection is gone (G2's fast path). */
const CLOSE_ON_DISCONNECT_MS = DEFAULT_CLOSE_ON_DISCONNECT_MS;
/**
 * A SIGKILLed gateway's parties move once the leader closes its session, CLOSE_ON_DISCONNECT_MS after it saw the
 * connection close, then a commit, a plan, an OPEN and a connect (tens of ms): with margin for a loaded
 * machine, yet below the session timeout, so only the fast path meets it.
 */
const FAST_MOVE_BOUND_MS = Math.min(CLOSE_ON_DISCONNECT_MS + 2_500, SESSION_TIMEOUT_MS - 500);
/** Starting a gateway process (it loads the client library through tsx): slow on a loaded machine. */
const PROCESS_START_MS = 60_000;

const FIX = ['p01', 'p02', 'p03', 'p04'];
const PARTIES = [...FIX, 'p05', 'p06', 'p07', 'p08', 'p09', 'p10', 'p11', 'p12'];

/**
 * Stickiness is small against least-loaded, so balancing stops only under the threshold: loads settle within
 * 1/capacity + stickiness/least-loaded = 0.1 + 0.05 of each other (docs/gateways.md), below 0.2.
 */
const RULES = {
  filters: [{ kind: 'capability' }, { kind: 'capacity' }],
  scores: [
    { kind: 'least-loaded', weight: 1 },
    { kind: 'stickiness', weight: 0.05 },
  ],
  rebalance: { movesPerRound: 2, pauseMs: 300, imbalanceThreshold: 0.2, settlingMs: 300 },
};

describe('gateways at process level (G1, G2, G3)', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let standIn: StandIn;
  let operator: ChorusClient;
  const gateways = new Map<string, GatewayProcess>();

  // Every gateway runs with the default close on disconnect (CLOSE_ON_DISCONNECT_MS).
  const startGateway = (name: string, capabilities: string[], endpoints = cluster.endpoints()) => {
    const config: GatewayConfigInput = {
      name,
      capabilities,
      labels: { zone: name },
      capacity: 10,
      endpoints,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      heartbeatMs: 150,
    };
    const gateway = GatewayProcess.start(config);
    gateways.set(name, gateway);
    return gateway;
  };

  const live = () => [...gateways.values()].filter((g) => g.running).map((g) => g.name);

  /** Every party has one live connection, held by a running gateway that can serve it. */
  const allServed = (except: readonly string[] = []) => {
    const holders = standIn.holders();
    return PARTIES.every((p) => {
      const holder = holders.get(p);
      if (holder === undefined || except.includes(holder) || !live().includes(holder)) return false;
      return !FIX.includes(p) || holder === 'g1' || holder === 'g2' || holder === 'g4';
    });
  };

  const holdings = () => {
    const count = new Map<string, number>();
    for (const holder of standIn.holders().values()) count.set(holder, (count.get(holder) ?? 0) + 1);
    return count;
  };

  before(async () => {
    standIn = await StandIn.start({ livenessMs: LIVENESS_MS });
    cluster = await TestCluster.start({
      overrides: { services: REGISTRY_MODULE, workerShards: 1, sessionTimeoutMs: SESSION_TIMEOUT_MS },
    });
    await cluster.whole(60_000); // members load the registry's modules first: slow on a loaded machine
    operator = await connectClient(cluster);
    await registry(operator, {
      type: 'SET_PARTIES',
      parties: PARTIES.map((id) => ({
        id,
        endpoint: standIn.endpoint,
        requires: FIX.includes(id) ? ['fix'] : [],
      })),
    });
    await registry(operator, { type: 'APPLY_RULES', rules: RULES });
  });

  afterEach(() => {
    const overlaps = standIn.overlaps.map(({ party, connections }) =>
      connections
        .map(
          (c) =>
            `${party} epoch ${c.epoch} by ${c.gateway} [${Math.round(c.openedAt)}, ${c.closedAt === null ? 'open' : Math.round(c.closedAt)}]`,
        )
        .join(' and '),
    );
    if (overlaps.length > 0) {
      for (const g of gateways.values())
        for (const r of g.records)
          if (r.party !== undefined || /lease|session|holding/.test(r.msg))
            process.stderr.write(
              `${g.name} ${Math.round(r.at)} ${r.msg} ${String(r.party ?? '')} ${String(r.epoch ?? '')} ${String(r.status ?? '')}\n`,
            );
    }
    expect(overlaps, 'two live connections for one party').to.deep.equal([]);
  });

  after(async () => {
    await Promise.all([...gateways.values()].map((g) => g.signal('SIGKILL')));
    await operator?.close().catch(() => {});
    await cluster?.close();
    await standIn?.close();
  });

  it('G1: gateways register with their capabilities; every party is owned by exactly one live gateway that can serve it', async () => {
    startGateway('g1', ['fix']);
    startGateway('g2', ['fix']);
    startGateway('g3', []);
    await eventually(
      async () => (await status(operator)).gateways.filter((g) => g.state === 'ACTIVE').length === 3,
      'three gateways registered',
      PROCESS_START_MS,
    );
    // Everything at once: three ACTIVE gateways, every party OPEN in the registry and served at the stand-in
    // (which sees a connection before the registry has its OPENED report).
    let view: Awaited<ReturnType<typeof status>> | null = null;
    let holders = new Map<string, string>(); // party → the gateway holding its connection
    await eventually(
      async () => {
        view = await status(operator);
        holders = standIn.holders();
        return (
          allServed() &&
          view.gateways.filter((g) => g.state === 'ACTIVE').length === 3 &&
          view.parties.every((p) => p.state === 'OPEN' && p.owner === holders.get(p.id))
        );
      },
      'three ACTIVE gateways serving every party',
      MOVE_BOUND_MS,
    );
    view = view as unknown as Awaited<ReturnType<typeof status>>;
    expect(view.gateways.map((g) => [g.name, g.state]).sort()).to.deep.equal([
      ['g1', 'ACTIVE'],
      ['g2', 'ACTIVE'],
      ['g3', 'ACTIVE'],
    ]);
    for (const party of view.parties) {
      expect(party.state, party.id).to.equal('OPEN');
      expect(party.owner, `${party.id}: the registry's owner holds the connection`).to.equal(
        holders.get(party.id),
      );
    }
    expect(standIn.liveConnections()).to.have.length(PARTIES.length);
  });

  it('G2: a SIGKILLed gateway owning parties — its session closed by the leader that saw its connection close, they are open on the others well before a session timeout', async () => {
    const count = holdings();
    const victim = ['g1', 'g2'].sort((a, b) => (count.get(b) ?? 0) - (count.get(a) ?? 0))[0];
    const owned = [...standIn.holders()].filter(([, g]) => g === victim).map(([p]) => p);
    expect(owned.length, `${victim} owns parties`).to.be.above(0);
    const killedAt = performance.now();
    await gateways.get(victim)?.signal('SIGKILL');
    await eventually(() => allServed([victim]), `${victim}'s parties open elsewhere`, MOVE_BOUND_MS);
    expect(performance.now() - killedAt, 'moved by the close on disconnect').to.be.below(FAST_MOVE_BOUND_MS);
    expect((await status(operator)).gateways.find((g) => g.name === victim)?.state).to.equal('LOST');
    gateways.get(victim)?.spawn(); // back for the next tests (it registers again)
    await eventually(
      async () => (await status(operator)).gateways.every((g) => g.state === 'ACTIVE'),
      'all back',
      PROCESS_START_MS,
    );
  });

  it('G2: a SIGSTOPped gateway is declared lost by its session timeout; woken, it closes what it no longer owns before anything else', async () => {
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
    const count = holdings();
    const victim = ['g1', 'g2', 'g3'].sort((a, b) => (count.get(b) ?? 0) - (count.get(a) ?? 0))[0];
    const frozen = gateways.get(victim) as GatewayProcess;
    expect(count.get(victim) ?? 0, `${victim} owns parties`).to.be.above(0);
    await frozen.signal('SIGSTOP');
    try {
      await eventually(
        async () => (await status(operator)).gateways.find((g) => g.name === victim)?.state === 'LOST',
        `${victim} declared lost`,
        MOVE_BOUND_MS,
      );
      await eventually(() => allServed([victim]), `${victim}'s parties open elsewhere`, MOVE_BOUND_MS);
    } finally {
      const wokeAt = frozen.records.length;
      await frozen.signal('SIGCONT');
      await eventually(
        () => frozen.find(/ownership unconfirmed|session closed/, wokeAt).length > 0,
        `${victim} notices it may own nothing`,
        10_000,
      );
      // The first thing it logs about its connections after waking is that it closes them all.
      const first = frozen.records
        .slice(wokeAt)
        .find((r) => /ownership unconfirmed|session closed|report|holding nothing/.test(r.msg));
      expect(first?.msg, `${victim}'s first act after waking`).to.match(
        /ownership unconfirmed|session closed/,
      );
    }
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
  });

  it('never two live connections for one party across a cluster leader kill (each gateway drops its parties while it has no cluster connection, and reopens only new assignments)', async () => {
    const leader = cluster.cluster.leader() as number;
    await cluster.cluster.kill(leader);
    await cluster.newLeader(leader, performance.now());
    await eventually(() => allServed(), 'every party served after the leader change', MOVE_BOUND_MS);
    cluster.restart(leader);
    await cluster.whole(60_000);
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
  });

  it("G3: a gateway started after the others receives parties within the rules' move limits instead of none", async () => {
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
    const opensBefore = standIn.records.length;
    startGateway('g4', ['fix']);
    await eventually(
      async () => (await status(operator)).gateways.find((g) => g.name === 'g4')?.state === 'ACTIVE',
      'the late gateway registered',
      PROCESS_START_MS,
    );
    try {
      await eventually(
        () => (holdings().get('g4') ?? 0) >= 2,
        'the late gateway holds its share',
        MOVE_BOUND_MS + RULES.rebalance.settlingMs + 10 * RULES.rebalance.pauseMs,
      );
    } catch (e) {
      // What the registry saw and would do, for whoever reads the failure.
      process.stderr.write(
        `${JSON.stringify({ status: await status(operator), holdings: [...holdings()] })}\n`,
      );
      throw e;
    }
    // Each party moved to it once (no thrashing back and forth).
    const toG4 = standIn.records
      .slice(opensBefore)
      .filter((r) => r.gateway === 'g4')
      .map((r) => r.party);
    expect(new Set(toG4).size, 'each party moved to g4 once').to.equal(toG4.length);
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
  });

  it('a gateway stopped with SIGTERM drains first: the registry moves its parties while it closes them, then it exits 0', async () => {
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
    const leaving = gateways.get('g4') as GatewayProcess;
    const owned = (holdings().get('g4') ?? 0) as number;
    expect(owned, 'g4 holds parties').to.be.above(0);
    const from = leaving.records.length;
    await leaving.signal('SIGTERM');
    expect(leaving.exitCode).to.equal(0);
    expect(leaving.find(/^draining$/, from), 'it drained').to.have.length(1);
    expect(leaving.find(/ownership unconfirmed|holding nothing/, from), 'no lease ran out').to.deep.equal([]);
    const closed = leaving.find(/^report$/, from).filter((r) => r.status === 'CLOSED');
    expect(closed.length, 'each party closed and reported').to.be.at.least(owned);
    await eventually(() => allServed(['g4']), "g4's parties open elsewhere", MOVE_BOUND_MS);
  });

  /**
   * A gateway that reaches the cluster only through a relay to the leader, holding parties; `cutOff` cuts the
   * relay and checks what follows (from the gateway's log records after `from`). Then the relay heals and
   * the gateway must register again; it is killed at the end.
   */
  const throughRelay = async (
    name: string,
    cutOff: (relay: Relay, gateway: GatewayProcess, from: number) => Promise<void>,
  ) => {
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
    const relay = await Relay.start(cluster.endpoint(cluster.cluster.leader() as number));
    const gateway = startGateway(name, ['fix'], [relay.endpoint]);
    try {
      await eventually(
        () => (holdings().get(name) ?? 0) >= 1,
        `${name} holds parties`,
        PROCESS_START_MS + 10 * RULES.rebalance.pauseMs,
      );
      await cutOff(relay, gateway, gateway.records.length);
      relay.heal();
      await eventually(
        async () => (await status(operator)).gateways.find((g) => g.name === name)?.state === 'ACTIVE',
        `${name} registers again once it can`,
        PROCESS_START_MS,
      );
    } finally {
      await gateway.signal('SIGKILL');
      gateways.delete(name);
      await relay.close();
    }
    await eventually(() => allServed(), 'every party served', MOVE_BOUND_MS);
  };

  it('G2: a gateway whose cluster connection is reset (the leader alive, no way back) drops its parties before the leader closes its session; they open on the others', async () => {
    await throughRelay('g5', async (relay, g5, from) => {
      const cutAt = performance.now();
      relay.cut();
      // The leader saw the connection close and closes g5's session after CLOSE_ON_DISCONNECT_MS; g5 still
      // runs and would keep its connections (the stand-in would see two) had it not dropped them first.
      await eventually(() => allServed(['g5']), "g5's parties open elsewhere", MOVE_BOUND_MS);
      expect(performance.now() - cutAt, 'moved by the close on disconnect').to.be.below(FAST_MOVE_BOUND_MS);
      expect((await status(operator)).gateways.find((g) => g.name === 'g5')?.state).to.equal('LOST');
      expect(g5.find(/cluster connection lost/, from), 'g5 dropped its parties').to.have.length.above(0);
    });
  });

  it('never two live connections for one party when a gateway is cut off from the cluster with no FIN or RST (a partition): its lease runs out before its session times out, its parties open on the others', async () => {
    await throughRelay('g6', async (relay, g6, from) => {
      const cutAt = performance.now();
      relay.silence();
      // The leader sees no close: the session times out, and only then do g6's parties move. g6 still runs,
      // and keeps nothing past its lease (0.8 × the session timeout), so the stand-in never sees two.
      await eventually(() => allServed(['g6']), "g6's parties open elsewhere", MOVE_BOUND_MS);
      expect(performance.now() - cutAt, 'moved once the session timed out').to.be.above(
        SESSION_TIMEOUT_MS * 0.8,
      );
      expect(
        g6.find(/ownership unconfirmed/, from),
        'g6 dropped its parties (the lease, or its client giving up on the silent member)',
      ).to.have.length.above(0);
    });
  });

  it('chorus gateway status | plan | explain | apply, for a person and --json; a stale --if-version and bad rules are refused, named, nothing applied', async () => {
    const flags = ['--endpoints', cluster.endpoints().join(',')];
    const dir = mkdtempSync(join(tmpdir(), 'chorus-rules-'));
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(
      rulesFile,
      'scores:\n  - kind: least-loaded\n    weight: 1\nrebalance:\n  movesPerRound: 1\n',
    );
    const badFile = join(dir, 'bad.yaml');
    writeFileSync(badFile, 'rebalance:\n  movesPerRound: -1\nscores: []\nfilterz: []\n');

    const json = await chorus(['gateway', 'status', ...flags, '--json']); // the whole way, as a process
    expect(json.code, json.stderr).to.equal(0);
    const view = JSON.parse(json.stdout) as {
      rulesVersion: number;
      parties: { id: string; epoch: number }[];
    };
    expect(view.parties.map((p) => p.id).sort()).to.deep.equal(PARTIES);
    const human = await gatewayCli(['status', ...flags]);
    expect(human.stdout)
      .to.include(`rules version ${view.rulesVersion}`)
      .and.match(/p01 {2}OPEN {2}owner g\d/);

    const plan = await gatewayCli(['plan', rulesFile, ...flags, '--json']);
    expect(plan.code, plan.stderr).to.equal(0);
    expect(JSON.parse(plan.stdout)).to.have.nested.property('plan.moves').that.is.an('array');
    const planned = await gatewayCli(['plan', rulesFile, ...flags]);
    expect(planned.stdout)
      .to.match(/nothing applied/)
      .and.match(/rebalance budget this round: \d+ of \d+ used/);

    const explained = await gatewayCli(['explain', 'p01', ...flags, '--json']);
    const explanation = JSON.parse(explained.stdout) as { party: string; gateways: { filters: unknown[] }[] };
    expect(explanation.party).to.equal('p01');
    expect(explanation.gateways.length).to.be.at.least(3);
    expect((await gatewayCli(['explain', 'p01', ...flags])).stdout).to.match(
      /filter capability: (pass|FAIL)/,
    );

    const stale = await gatewayCli([
      'apply',
      rulesFile,
      '--if-version',
      String(view.rulesVersion + 5),
      ...flags,
    ]);
    expect(stale.code).to.equal(1);
    expect(stale.stderr).to.match(/apply refused: .*version/);
    const applied = await gatewayCli([
      'apply',
      rulesFile,
      '--if-version',
      String(view.rulesVersion),
      ...flags,
      '--json',
    ]);
    expect(applied.code, applied.stderr).to.equal(0);
    expect(JSON.parse(applied.stdout)).to.deep.equal({ version: view.rulesVersion + 1 });

    const bad = await gatewayCli(['apply', badFile, ...flags]);
    expect(bad.code).to.equal(1);
    expect(bad.stdout, 'a refusal prints no answer').to.equal('');
    expect(bad.stderr)
      .to.match(/apply refused: invalid rules: .*rebalance\.movesPerRound/)
      .and.match(/filterz: not a known field/);
    expect((await status(operator)).rulesVersion, 'nothing applied by the bad file').to.equal(
      view.rulesVersion + 1,
    );
  });
});
