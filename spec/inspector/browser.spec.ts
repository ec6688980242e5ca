// The inspector page in a real browser: Debian's Chromium driven by playwright-core, against a real
// 3-member cluster (member processes running the example counter service) and the real inspector server.
// Every request but the inspector's is aborted, so the page must work with no network. It shows three
// members and the leader; a client connecting appears as a session; a command changes an actor's
// highlighted state; bad input (an unknown actor, an index beyond the log) and a member that is down
// are sentences on the page; killing the leader shows the new leader, having walked CANVASS → NOMINATE →
// CANDIDATE_BALLOT → LEADER_*. A screenshot of each step goes to tmp/inspector-screenshots/.
// Without Chromium (`apt-get install chromium`; .ci/run installs it) the suite skips and says why.

import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type Browser, chromium, type Page } from 'playwright-core';
import { counterService } from '../../examples/counter-service.ts';
import { serviceClient } from '../../runtime/actor-runtime/service-client.ts';
import type { ChorusClient } from '../../runtime/client/client.ts';
import { InspectorServer } from '../../runtime/inspector/server.ts';
import { connectClient, FAILOVER_MS, TestCluster } from '../runtime/cluster/support.ts';

const SERVICES = fileURLToPath(new URL('../../examples/counter-service.ts', import.meta.url));
const SCREENSHOTS = fileURLToPath(new URL('../../tmp/inspector-screenshots/', import.meta.url));
/** What the page may take to show a change: a member pushes within 100 ms; the rest is a loaded machine's margin. */
const SHOW_MS = 15_000;
/**
 * A chart's first drawing: the member lays it out with elkjs on a worker thread (about 0.5 s of CPU for the
 * election chart), which on a loaded 2-core machine takes many times that; later views reuse it.
 */
const FIRST_CHART_MS = 90_000;
/** A member process's start and catch-up on a loaded machine. */
const RESTART_MS = 60_000;

/** The page's document, as the functions run in the browser (waitForFunction) read it; the specs have no DOM types. */
declare const document: {
  querySelectorAll(selector: string): { length: number };
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
  getElementById(id: string): { dataset: Record<string, string | undefined> } | null;
};

const chromiumPath = (): string | null => {
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() !== '' ? found.stdout.trim() : null;
};

describe('inspector page in Chromium (3 member processes)', function () {
  this.timeout(4 * FIRST_CHART_MS);
  let browser: Browser | null = null;
  let cluster: TestCluster | null = null;
  let inspector: InspectorServer | null = null;
  let page: Page;
  const clients: ChorusClient[] = [];
  const blocked: string[] = [];
  /** The commit position once the actor's INCREMENT was applied (before its REMIND). */
  let incrementedAt = 0;
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  before(async function () {
    const executablePath = chromiumPath();
    if (executablePath === null) {
      console.log(
        '    (skipped: no chromium on PATH; install it with `apt-get install -y chromium`, as .ci/run does)',
      );
      this.skip();
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    cluster = await TestCluster.start({ overrides: { services: SERVICES, workerShards: 2 } });
    await cluster.whole(30_000);
    const urls = cluster.cluster.adminUrls();
    inspector = await InspectorServer.start({
      members: urls.map((url, id) => ({ id, url: url as string })),
    });
    browser = await chromium.launch({
      executablePath: executablePath as string,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1500, height: 1100 } });
    const origin = new URL(inspector.url).origin;
    // No network: anything not from the inspector is aborted (and noted, to fail below).
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${origin}/`) || url.startsWith('data:')) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  after(async () => {
    for (const client of clients) await client.close().catch(() => {});
    await browser?.close();
    await inspector?.close();
    await cluster?.close();
  });

  afterEach(() => {
    expect(pageErrors, 'uncaught errors on the page').to.deep.equal([]);
    expect(blocked, 'requests to anywhere but the inspector').to.deep.equal([]);
  });

  it('loads with only the inspector reachable, and shows three members, the leader and the statecharts', async () => {
    const c = cluster as TestCluster;
    const leader = c.cluster.leader();
    await page.goto((inspector as InspectorServer).url);
    await page.waitForFunction(
      (id) =>
        document.querySelectorAll('.member[data-up="true"]').length === 3 &&
        document.getElementById('summary')?.dataset.leader === String(id),
      leader,
      { timeout: SHOW_MS },
    );
    expect(await page.locator(`.member[data-member="${leader}"]`).getAttribute('data-role')).to.equal(
      'LEADER',
    );
    // Every member's badge on the election chart, and the module chart's ACTIVE highlighted.
    await page.waitForSelector('#election-chart g.badge', { timeout: FIRST_CHART_MS });
    expect(await page.locator('#election-chart g.badge').count()).to.equal(3);
    await page.waitForSelector('#module-chart g.state.active[data-state="ACTIVE"]', {
      timeout: FIRST_CHART_MS,
    });
    await shot('1-cluster');
  });

  it('a client connecting appears as a session', async () => {
    const client = await connectClient(cluster as TestCluster);
    clients.push(client);
    const id = client.sessionId;
    expect(id).to.be.a('number');
    await page.click('nav a[data-tab="sessions"]');
    await page.waitForSelector(`#sessions-table tr[data-session="${id}"][data-state="OPEN"]`, {
      timeout: SHOW_MS,
    });
    await page.waitForSelector('#session-chart g.state.active[data-state="OPEN"]', {
      timeout: FIRST_CHART_MS,
    });
    await shot('2-session');
  });

  it("a command changes an actor's highlighted state", async () => {
    const counters = serviceClient(clients[0] as ChorusClient, counterService);
    await counters.command({ type: 'INCREMENT', id: 'seen', by: 1 });
    // Acknowledged once applied: the leader's commit position now covers the INCREMENT, and no REMIND yet.
    const c = cluster as TestCluster;
    const adminUrl = c.cluster.adminUrls()[c.cluster.leader() as number] as string;
    incrementedAt = ((await (await fetch(`${adminUrl}/state`)).json()) as { commitPosition: number })
      .commitPosition;
    await page.click('nav a[data-tab="actors"]');
    await page.fill('#actor-address', 'counters/counter/seen');
    await page.click('#actor-open');
    await page.waitForSelector('#actor-detail g.state.active[data-state="IDLE"]', {
      timeout: FIRST_CHART_MS,
    });
    // A reminder far off: the actor stays WAITING while the page is looked at.
    expect(await counters.command({ type: 'REMIND', id: 'seen', afterMs: 600_000 })).to.equal('WAITING');
    await page.waitForSelector('#actor-detail g.state.active[data-state="WAITING"]', { timeout: SHOW_MS });
    expect(await page.locator('#actor-detail g.state.active[data-state="IDLE"]').count()).to.equal(0);
    await shot('3-actor');
  });

  it('time travel shows an actor as of an index; bad input is a clear message: an unknown actor, an index beyond the log, no gateways service', async () => {
    await page.fill('#actor-address', 'counters/counter/nobody');
    await page.click('#actor-open');
    const unknown = await page.waitForSelector('#actor-detail .error', { timeout: SHOW_MS });
    expect(await unknown.textContent()).to.match(
      /^Cannot show actor counters\/counter\/nobody: no actor .*no committed input yet/,
    );
    await page.click('nav a[data-tab="log"]');
    await page.waitForSelector('#log-table tr[data-index]', { timeout: SHOW_MS });
    await page.fill('#travel-address', 'counters/counter/seen');
    await page.fill('#travel-index', '999999');
    await page.click('#travel-go');
    const beyond = await page.waitForSelector('#travel-detail .error', { timeout: SHOW_MS });
    expect(await beyond.textContent()).to.match(
      /^Cannot show counters\/counter\/seen as of index 999999: index 999999 is beyond/,
    );
    // Time travel: as of the INCREMENT's commit, the actor was IDLE with count 1 (it is WAITING now).
    await page.fill('#travel-index', String(incrementedAt));
    await page.click('#travel-go');
    await page.waitForSelector('#travel-detail g.state.active[data-state="IDLE"]', {
      timeout: FIRST_CHART_MS,
    });
    expect(await page.locator('#travel-detail h2 small').textContent()).to.contain(
      `as of index ${incrementedAt} (replayed in isolation)`,
    );
    expect(
      JSON.parse((await page.locator('#travel-detail [data-field="context"]').textContent()) ?? ''),
    ).to.include({
      count: 1,
      reminders: 0,
    });
    await shot('4-time-travel');
    await page.click('nav a[data-tab="gateways"]');
    const gateways = await page.waitForSelector('#gateways-panel [data-field="gateways"]', {
      timeout: SHOW_MS,
    });
    expect(await gateways.textContent()).to.match(/^gateways service not running/);
    await shot('5-bad-input');
  });

  it('kill the leader: the member shows down, and the new leader is shown having walked CANVASS → NOMINATE → CANDIDATE_BALLOT → LEADER_*', async () => {
    const c = cluster as TestCluster;
    const old = c.cluster.leader() as number;
    await page.click('nav a[data-tab="cluster"]');
    const killedAt = Date.now();
    await c.cluster.kill(old);
    const { id: next } = await c.newLeader(old, performance.now(), 10 * FAILOVER_MS + SHOW_MS);
    await page.waitForFunction(
      ({ old, next }) =>
        document.querySelector(`.member[data-member="${old}"]`)?.getAttribute('data-up') === 'false' &&
        document.getElementById('summary')?.dataset.leader === String(next),
      { old, next },
      { timeout: SHOW_MS },
    );
    const down = await page.locator(`.member[data-member="${old}"] .error`).textContent();
    expect(down).to.match(new RegExp(`^member ${old} is down: `));
    // The new leader's election transitions since the kill, oldest first.
    const walk = await page.$$eval(
      `.history[data-member="${next}"] li[data-machine="election"]`,
      (items, since) =>
        items
          .map((li) => ({ to: li.getAttribute('data-to') ?? '', at: Number(li.getAttribute('data-at')) }))
          .filter((r) => r.at >= since)
          .sort((a, b) => a.at - b.at)
          .map((r) => r.to),
      killedAt,
    );
    const order = ['CANVASS', 'NOMINATE', 'CANDIDATE_BALLOT'];
    let at = -1;
    for (const state of order) {
      at = walk.indexOf(state, at + 1);
      expect(at, `${state} in ${walk.join(' → ')}`).to.be.at.least(0);
    }
    expect(
      walk.slice(at + 1).some((s) => s.startsWith('LEADER_')),
      walk.join(' → '),
    ).to.equal(true);
    await shot('6-new-leader');
  });

  it('the killed member, restarted, is shown up again as a follower (the page follows member restarts by itself)', async () => {
    const c = cluster as TestCluster;
    const down = [0, 1, 2].find((id) => !c.running(id)) as number;
    c.restart(down);
    await c.whole(RESTART_MS);
    await page.waitForFunction(
      (id) => {
        const card = document.querySelector(`.member[data-member="${id}"]`);
        return card?.getAttribute('data-up') === 'true' && card.getAttribute('data-role') === 'FOLLOWER';
      },
      down,
      { timeout: SHOW_MS },
    );
    await shot('7-restarted');
  });

  it('the inspector restarted on its port: the page says it is disconnected, then reconnects by itself', async () => {
    const { port } = new URL((inspector as InspectorServer).url);
    const members = (cluster as TestCluster).cluster
      .adminUrls()
      .map((url, id) => ({ id, url: url as string }));
    await (inspector as InspectorServer).close();
    inspector = null;
    await page.waitForSelector('#live[data-live="closed"]', { timeout: SHOW_MS });
    expect(await page.locator('#live').textContent()).to.match(
      /^disconnected from the inspector; reconnecting in/,
    );
    inspector = await InspectorServer.start({ members, port: Number(port) });
    await page.waitForSelector('#live[data-live="open"]', { timeout: SHOW_MS });
    await page.waitForFunction(
      () => document.querySelectorAll('.member[data-up="true"]').length === 3,
      undefined,
      {
        timeout: SHOW_MS,
      },
    );
    await shot('8-reconnected');
  });
});
