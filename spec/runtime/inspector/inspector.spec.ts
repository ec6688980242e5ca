// The inspector's server side against a real 3-member cluster running the example counters: every
// member's admin HTTP API (state, log, actors, time travel, machines, metrics), its live socket, and
// `chorus inspect`'s server in front of them (members up or down, the multiplexed live socket across a
// leader kill). Bad input gets a clear `{ error }`; nothing here sleeps for a fixed time to pass.

import { expect } from 'chai';
import { counterService } from '../../../examples/counter-service.ts';
import { serviceClient } from '../../../runtime/actor-runtime/service-client.ts';
import { ChorusClient } from '../../../runtime/client/client.ts';
import { MAX_LIVE_SOCKETS } from '../../../runtime/inspector/member-feed.ts';
import { endpointsOf, InspectorServer } from '../../../runtime/inspector/server.ts';
import { LocalCluster } from '../../../runtime/local-cluster.ts';
import {
  getJson,
  type Json,
  liveState,
  parsePrometheus,
  RecordingSocket,
  type Refusal,
  sampleValue,
} from './support.ts';

const SERVICES = new URL('../../../examples/counter-service.ts', import.meta.url).pathname;
const ADDRESS = 'counters/counter/inspected';

describe('inspector server: a member’s admin API and chorus inspect, on a 3-member cluster', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  let inspector: InspectorServer;
  let client: ChorusClient;
  let urls: string[];
  /** One failover with this cluster's timing, with a wide margin for a loaded machine. */
  let failoverMs: number;

  const counters = () => serviceClient(client, counterService);
  const leaderUrl = () => urls[cluster.leader() as number];

  before(async () => {
    cluster = await LocalCluster.start({ overrides: { services: SERVICES } });
    const { leaderHeartbeatTimeoutMs, electionTimeoutMs } = cluster.config;
    failoverMs = 10 * (leaderHeartbeatTimeoutMs + electionTimeoutMs);
    urls = cluster.adminUrls() as string[];
    inspector = await InspectorServer.start({ members: endpointsOf(cluster.config) });
    await cluster.waitForLeader(30_000);
    client = await ChorusClient.connect({ endpoints: cluster.endpoints(), commandTimeoutMs: 15_000 });
  });

  after(async () => {
    await client?.close().catch(() => {});
    await inspector?.close();
    await cluster?.close();
  });

  it('GET /state shows each member’s role, election and module state, positions, followers and sessions', async () => {
    await counters().command({ type: 'INCREMENT', id: 'warm-up', by: 1 });
    const states = await Promise.all(urls.map(async (url) => (await getJson(`${url}/state`)).body));
    const leaders = states.filter((s) => s.role === 'LEADER');
    expect(leaders, 'one leader').to.have.length(1);
    const [leader] = leaders;
    for (const state of states) {
      expect(state).to.include.keys(
        'memberId',
        'role',
        'term',
        'leaderId',
        'electionState',
        'moduleState',
        'appendPosition',
        'commitPosition',
        'followers',
        'sessions',
        'transitions',
      );
      expect(state.leaderId).to.equal(leader.memberId);
      expect(state.moduleState).to.equal('ACTIVE');
    }
    expect(leader.followers.map((f: Json) => f.id).sort()).to.deep.equal(
      [0, 1, 2].filter((id) => id !== leader.memberId),
    );
    for (const follower of leader.followers) {
      expect(['PROBE', 'REPLICATE', 'SNAPSHOT']).to.include(follower.progress);
      expect(follower.lag).to.equal(leader.appendPosition - follower.matchIndex);
    }
    // The client's session, in its chart's state, on the leader.
    const [session] = leader.sessions;
    expect(session).to.include({ state: 'OPEN', connected: true, inFlight: 0 }); // its command was answered
    expect(session.lastActivityMs).to.be.a('number').and.at.least(0);
    // The election that made it leader, as its chart walked it.
    const walked = leader.transitions.filter((t: Json) => t.machine === 'election').map((t: Json) => t.to);
    expect(walked).to.include.members(['CANVASS', 'CANDIDATE_BALLOT', 'LEADER_READY']);
    expect(leader.transitions.find((t: Json) => t.machine === 'role' && t.to === 'LEADER')).to.include({
      from: 'CANDIDATE',
    });
  });

  it('GET /log pages through the log with each entry’s kind, session and size', async () => {
    const { body } = await getJson(`${leaderUrl()}/log?from=1&limit=500`);
    expect(body.firstIndex).to.equal(1);
    expect(body.entries[0].index).to.equal(1);
    expect(body.entries.map((e: Json) => e.kind)).to.include.members([
      'NEW_LEADERSHIP_TERM',
      'SESSION_OPEN',
      'SESSION_MESSAGE',
    ]);
    const message = body.entries.find((e: Json) => e.kind === 'SESSION_MESSAGE');
    expect(message.session).to.be.a('number').and.above(0);
    expect(message.size).to.be.above(24);
  });

  it('GET /actors lists services → shards → actors; GET /actors/ADDRESS shows state, context, timers, inputs', async () => {
    for (let i = 0; i < 3; i++) await counters().command({ type: 'INCREMENT', id: 'inspected', by: 1 });
    await counters().command({ type: 'REMIND', id: 'inspected', afterMs: 600_000 });
    const list = (await getJson(`${leaderUrl()}/actors?q=inspect`)).body;
    expect(list.truncated).to.equal(false);
    const service = list.services.find((s: Json) => s.name === 'counters');
    expect(service.shards.flatMap((s: Json) => s.actors)).to.deep.equal([ADDRESS]);
    const actor = (await getJson(`${leaderUrl()}/actors/${ADDRESS}`)).body;
    expect(actor).to.include({ address: ADDRESS, machine: 'counters.counter', state: 'WAITING' });
    expect(actor.context).to.include({ count: 3, reminderMs: 600_000 });
    expect(actor.timers).to.have.length(1);
    expect(actor.timers[0].dueAtMs).to.be.above(Date.now());
    expect(actor.lastInputs.map((i: Json) => i.input[2].type)).to.deep.equal([
      'REMIND',
      'INCREMENT',
      'INCREMENT',
      'INCREMENT',
    ]);
    const machines = (await getJson(`${leaderUrl()}/machines`)).body.machines;
    expect(machines).to.deep.include({ id: 'election', title: 'Election', kind: 'cluster' });
    expect(machines.find((m: Json) => m.id === actor.machine)).to.include({
      kind: 'service',
      service: 'counters',
    });
    // The actor's chart, drawn, with the state it is in among its states.
    const svg = await fetch(`${leaderUrl()}/machines/${actor.machine}.svg`);
    expect(svg.headers.get('content-type')).to.equal('image/svg+xml');
    expect(await svg.text()).to.include('data-state="WAITING"');
  });

  it('GET /actors/ADDRESS/at/INDEX replays to that index in isolation; the live actor is untouched', async () => {
    const url = leaderUrl();
    const before = (await getJson(`${url}/actors/${ADDRESS}`)).body;
    const inputs = [...before.lastInputs].reverse(); // oldest first: INCREMENT ×3, REMIND
    for (const [n, input] of inputs.entries()) {
      const past = (await getJson(`${url}/actors/${ADDRESS}/at/${input.index}`)).body;
      expect(past.index).to.equal(input.index);
      expect(past.context.count, `count as of ${input.index}`).to.equal(Math.min(n + 1, 3));
      expect(past.state).to.equal(n < 3 ? 'IDLE' : 'WAITING');
      expect(past.timers, `timers as of ${input.index}`).to.have.length(n < 3 ? 0 : 1);
    }
    // Just before its first input the actor did not exist.
    const early = await getJson(`${url}/actors/${ADDRESS}/at/${inputs[0].index - 1}`);
    expect(early.status).to.equal(404);
    expect(early.body.error).to.match(/no actor .* as of index/);
    expect((await getJson(`${url}/actors/${ADDRESS}`)).body).to.deep.equal(before);
  });

  it('bad input: an unknown actor, an index beyond the log, a bad parameter — a 4xx with { error }', async () => {
    const url = leaderUrl();
    const cases: [string, number, RegExp][] = [
      ['/actors/counters/counter/never-used', 404, /no actor counters\/counter\/never-used/],
      ['/actors/nobody/counter/x', 404, /no service 'nobody' is registered on this member/],
      ['/actors/counters/nokind/x', 404, /service 'counters' has no actor type 'nokind'/],
      ['/actors/not-an-address', 404, /not of the form service\/actorType\/actorId/],
      [`/actors/${ADDRESS}/at/999999999`, 404, /beyond the committed log/],
      [`/actors/${ADDRESS}/at/minus-one`, 400, /whole number/],
      ['/log?from=999999999', 404, /beyond the log/],
      ['/log?limit=0', 400, /limit must be a whole number in 1\.\.1000/],
      ['/machines/no-such.svg', 404, /no machine 'no-such'/],
      ['/nowhere', 404, /no route \/nowhere/],
    ];
    for (const [path, status, message] of cases) {
      const { status: got, body } = await getJson(`${url}${path}`);
      expect(got, path).to.equal(status);
      expect(body.error, path).to.match(message);
    }
  });

  it('GET /metrics is Prometheus text, and the commit counter and latency histograms move as commands commit', async () => {
    const url = leaderUrl();
    const before = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    for (let i = 0; i < 5; i++) await counters().command({ type: 'INCREMENT', id: 'metered', by: 1 });
    const after = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
    const delta = (name: string) => sampleValue(after, name) - sampleValue(before, name);
    expect(delta('chorus_committed_entries_total')).to.be.at.least(5);
    expect(delta('chorus_commit_latency_seconds_count')).to.be.at.least(1);
    expect(delta('chorus_append_latency_seconds_count')).to.be.at.least(1);
    expect(sampleValue(after, 'chorus_role', { role: 'LEADER' })).to.equal(1);
    expect(sampleValue(after, 'chorus_sessions')).to.be.at.least(1);
    expect(sampleValue(after, 'chorus_elections_total')).to.be.at.least(1);
    expect(after.some((s) => s.name.startsWith('nodejs_eventloop_lag'))).to.equal(true);
  });

  it('a member’s /live pushes a full state first, then only the watched actors a command changed; a bad watch is refused with the reason', async () => {
    const socket = await RecordingSocket.open(`${leaderUrl().replace('http', 'ws')}/live`);
    const send = (text: string) => socket.socket.send(text);
    try {
      const first = await socket.next(() => true, 'a first message', failoverMs);
      expect(first.type).to.equal('state');
      expect(first.state.role).to.equal('LEADER');
      for (const bad of [
        'not json',
        '{"type":"watch","actors":5}',
        '{"type":"watch","actors":[""]}',
        `{"type":"watch","actors":${JSON.stringify(Array.from({ length: 33 }, (_, i) => `counters/counter/${i}`))}}`,
        '{"type":"rename"}',
      ]) {
        const errors = socket.messages.filter((m) => m.type === 'error').length;
        send(bad);
        const refused = await socket.next(
          () => socket.messages.filter((m) => m.type === 'error').length > errors,
          `a refusal of ${bad.slice(0, 40)}`,
          failoverMs,
        );
        expect(refused).to.have.property('type');
        expect(socket.messages.filter((m) => m.type === 'error').at(-1).error).to.be.a('string').and.not
          .empty;
      }
      send(JSON.stringify({ type: 'watch', actors: ['counters/counter/pushed'] }));
      await counters().command({ type: 'INCREMENT', id: 'unwatched', by: 1 });
      const count = (await counters().command({ type: 'INCREMENT', id: 'pushed', by: 1 })) as number;
      const pushed = await socket.next(
        (m) => m.type === 'actor' && m.address === 'counters/counter/pushed' && m.context?.count === count,
        'an actor push for counters/counter/pushed',
        failoverMs,
      );
      expect(pushed.state).to.equal('IDLE');
      const unwatched = socket.messages.filter((m) => m.type === 'actor' && m.address !== pushed.address);
      expect(unwatched, 'pushes of actors nobody watches').to.deep.equal([]);
    } finally {
      socket.close();
    }
  });

  it('chorus inspect tells each member the actors its pages watch, and passes their pushes on', async () => {
    const page = await RecordingSocket.open(`${inspector.url.replace('http', 'ws')}api/live`);
    try {
      const leader = cluster.leader() as number;
      await page.next((m) => m.member === leader && m.type === 'state', 'the leader’s state', failoverMs);
      page.socket.send(
        JSON.stringify({ type: 'watch', actors: [{ member: 9, address: 'counters/counter/x' }] }),
      );
      const refused = await page.next((m) => m.type === 'error', 'a refused watch', failoverMs);
      expect(refused.error).to.match(/names a member of 0, 1, 2/);
      page.socket.send(
        JSON.stringify({ type: 'watch', actors: [{ member: leader, address: 'counters/counter/paged' }] }),
      );
      // Until the member has the watch its pushes would be lost: command until one arrives.
      const pushed = new Promise((resolve) =>
        page
          .next(
            (m) => m.member === leader && m.type === 'actor' && m.address === 'counters/counter/paged',
            'an actor push for counters/counter/paged',
            failoverMs,
          )
          .then(resolve, resolve),
      );
      let arrived = false;
      void pushed.then(() => {
        arrived = true;
      });
      const deadline = Date.now() + failoverMs;
      while (!arrived && Date.now() < deadline)
        await counters().command({ type: 'INCREMENT', id: 'paged', by: 1 });
      const message = (await pushed) as Json;
      expect(message).to.include({ member: leader, address: 'counters/counter/paged', state: 'IDLE' });
    } finally {
      page.close();
    }
  });

  it('after the whole state, a member’s /live pushes only the fields that changed, never the transitions again', async () => {
    const socket = await RecordingSocket.open(`${leaderUrl().replace('http', 'ws')}/live`);
    try {
      const first = await socket.next(() => true, 'a first message', failoverMs);
      expect(first.type).to.equal('state');
      expect(first.state.transitions).to.be.an('array').that.is.not.empty;
      await counters().command({ type: 'INCREMENT', id: 'delta', by: 1 });
      const delta = await socket.next(
        (m) => m.type === 'delta' && m.state.commitPosition > first.state.commitPosition,
        'a delta with the new commit position',
        failoverMs,
      );
      // Nothing that stayed the same rides along: no election happened, the member is the same one.
      expect(delta.state).to.not.have.any.keys('transitions', 'memberId', 'term', 'role', 'electionState');
      expect(socket.messages.slice(1).filter((m) => m.type === 'state')).to.deep.equal([]);
      // The whole state and the deltas after it add up to what GET /state says.
      const now = (await getJson(`${leaderUrl()}/state`)).body;
      await socket.next(
        () => liveState(socket.messages).commitPosition >= now.commitPosition,
        'the deltas up to GET /state’s commit position',
        failoverMs,
      );
      const state = liveState(socket.messages);
      for (const key of ['memberId', 'role', 'term', 'leaderId', 'electionState', 'moduleState'])
        expect(state[key], key).to.deep.equal(now[key]);
      expect(state.sessions.map((s: Json) => s.id)).to.deep.equal(now.sessions.map((s: Json) => s.id));
    } finally {
      socket.close();
    }
  });

  it('chorus inspect gives a page that attaches later the state its deltas left, not the first one', async () => {
    const live = (url: string) => RecordingSocket.open(`${url.replace('http', 'ws')}api/live`);
    const early = await live(inspector.url);
    try {
      const leader = cluster.leader() as number;
      const first = await early.next(
        (m) => m.member === leader && m.type === 'state',
        'the leader’s state',
        failoverMs,
      );
      await counters().command({ type: 'INCREMENT', id: 'late-page', by: 1 });
      const delta = await early.next(
        (m) =>
          m.member === leader && m.type === 'delta' && m.state.commitPosition > first.state.commitPosition,
        'a delta from the leader',
        failoverMs,
      );
      const late = await live(inspector.url);
      try {
        const given = await late.next(
          (m) => m.member === leader && m.type === 'state',
          'the leader’s state, to the late page',
          failoverMs,
        );
        expect(given.state.commitPosition).to.be.at.least(delta.state.commitPosition);
        expect(given.state.transitions).to.be.an('array').that.is.not.empty;
      } finally {
        late.close();
      }
    } finally {
      early.close();
    }
  });

  // A literal title: the runbook cites it (spec/docs/runbook.spec.ts reads titles from the source).
  it('a member serves at most 8 live sockets; one more is refused with a 503 saying why, the others go on', async () => {
    expect(MAX_LIVE_SOCKETS, 'the limit the title names').to.equal(8);
    const url = `${urls[((cluster.leader() as number) + 1) % 3].replace('http', 'ws')}/live`;
    const attempt = () => RecordingSocket.attempt(url);
    const open: RecordingSocket[] = [];
    try {
      // Sockets of earlier tests (and chorus inspect's) may take a moment to be let go by the member.
      const deadline = Date.now() + failoverMs;
      while (open.length < MAX_LIVE_SOCKETS) {
        const got = await attempt();
        if (got instanceof RecordingSocket) open.push(got);
        else if (Date.now() > deadline) throw new Error(`refused before the limit: ${got.body}`);
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const refused = await attempt();
      expect(refused).to.not.be.instanceOf(RecordingSocket);
      const { status, body } = refused as Refusal;
      expect(status).to.equal(503);
      expect(JSON.parse(body).error).to.match(new RegExp(`${MAX_LIVE_SOCKETS} live sockets are attached`));
      // The attached ones still get pushes.
      const before = open.map((socket) => socket.messages.length);
      await counters().command({ type: 'INCREMENT', id: 'limited', by: 1 });
      await Promise.all(
        open.map((socket, i) =>
          socket.next(() => socket.messages.length > before[i], 'a push after the refusal', failoverMs),
        ),
      );
      // One leaves: a new one is taken.
      open.pop()?.close();
      let again = await attempt();
      while (!(again instanceof RecordingSocket) && Date.now() < deadline + failoverMs) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        again = await attempt();
      }
      expect(again).to.be.instanceOf(RecordingSocket);
      open.push(again as RecordingSocket);
    } finally {
      for (const socket of open) socket.close();
    }
  });

  let killed: number | null = null;

  it('chorus inspect’s /api/live delivers the leader change after the leader is killed', async () => {
    const live = await RecordingSocket.open(`${inspector.url.replace('http', 'ws')}api/live`);
    try {
      const old = cluster.leader() as number;
      for (const id of [0, 1, 2])
        await live.next((m) => m.member === id && m.type === 'state', `member ${id}'s state`, failoverMs);
      killed = old;
      await cluster.kill(old);
      const down = await live.next(
        (m) => m.member === old && m.type === 'down',
        'the old leader down',
        failoverMs,
      );
      expect(down.reason).to.be.a('string').and.not.equal('');
      const ready = await live.next(
        (m) =>
          m.type === 'transition' && m.machine === 'election' && m.to === 'LEADER_READY' && m.member !== old,
        'a new leader reaching LEADER_READY',
        failoverMs,
      );
      const walk = live.messages
        .filter((m) => m.member === ready.member && m.type === 'transition' && m.machine === 'election')
        .map((m) => m.to);
      const order = ['CANVASS', 'CANDIDATE_BALLOT', 'LEADER_LOG_REPLICATION', 'LEADER_READY'].map((s) =>
        walk.indexOf(s),
      );
      expect(order, `the new leader's walk: ${walk.join(' → ')}`).to.satisfy((at: number[]) =>
        at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1])),
      );
      await live.next(
        (m) => m.member === ready.member && liveState(live.messages, ready.member)?.role === 'LEADER',
        'the new leader’s state',
        failoverMs,
      );
    } finally {
      live.close();
    }
  });

  it('a member that is down: /api/members says so with the reason; its API answers 502 with { error }', async () => {
    const down = killed ?? 0;
    if (killed === null) await cluster.kill(down);
    const members = (await getJson(`${inspector.url}api/members`)).body.members;
    expect(members).to.have.length(3);
    const entry = members.find((m: Json) => m.id === down);
    expect(entry).to.include({ up: false });
    expect(entry.reason).to.match(/is down/);
    expect(members.filter((m: Json) => m.up)).to.have.length(2);
    const { status, body } = await getJson(`${inspector.url}api/member/${down}/state`);
    expect(status).to.equal(502);
    expect(body.error).to.match(new RegExp(`member ${down} .* is down`));
    const unknown = await getJson(`${inspector.url}api/member/7/state`);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error).to.match(/no member 7 \(members: 0, 1, 2\)/);
  });

  it('chorus inspect redials a member that comes back: /api/live says it is up and gives its state again', async () => {
    const down = killed ?? 0;
    if (cluster.views[down].running) await cluster.kill(down);
    const live = await RecordingSocket.open(`${inspector.url.replace('http', 'ws')}api/live`);
    try {
      await live.next((m) => m.member === down && m.type === 'down', `member ${down} down`, failoverMs);
      cluster.startMember(down);
      // Bounded by a member process's start on a loaded machine, not by anything the inspector decides.
      const restartMs = 45_000;
      await live.next((m) => m.member === down && m.type === 'up', `member ${down} up again`, restartMs);
      const state = await live.next(
        (m) => m.member === down && m.type === 'state',
        `member ${down}'s state after its restart`,
        restartMs,
      );
      expect(state.state.memberId).to.equal(down);
    } finally {
      live.close();
    }
  });

  it('serves the page and its assets from the package, and nothing outside it', async () => {
    const page = await fetch(inspector.url);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.match(/text\/html/);
    const outside = await getJson(`${inspector.url}assets/..%2f..%2fserver.ts`);
    expect(outside.status).to.equal(404);
    expect(outside.body.error).to.match(/no asset/);
  });
});
