import { createServer, type Server } from 'node:net';
import { expect } from 'chai';
import { type MemberConfig, maxPeerFrameBytes } from '../../runtime/config.ts';
import {
  PeerKind,
  PeerNetwork,
  type PeerNetworkOptions,
  type PeerWarningFields,
  RedialSchedule,
} from '../../runtime/peer-network.ts';
import { WarningLimiter } from '../../runtime/warning-limiter.ts';
import { HEADER_BYTES } from '../../runtime/wire/frame-codec.ts';
import { dialAsPeer, memberConfigs, peerOptions, rawExchange } from '../security/peers.ts';
import { eventually } from '../support/ports.ts';

// The peer network's redial schedule, step by step (no timers): each delay lies in the equal-jitter
// band [ceiling / 2, ceiling] with ceiling = min(max, base·2^attempt), so it grows, is capped, and is
// spread rather than fixed; members seeded with their own ids do not redial a peer in lockstep.
describe('peer network redial schedule', () => {
  const base = 50;
  const max = 1000;
  const delays = (schedule: RedialSchedule, peer: number, count: number): number[] =>
    Array.from({ length: count }, () => schedule.next(peer));

  it('grows exponentially within the jitter band and never exceeds the cap', () => {
    const schedule = new RedialSchedule(1, base, max);
    delays(schedule, 2, 40).forEach((delay, attempt) => {
      const ceiling = Math.min(max, base * 2 ** attempt);
      expect(delay, `attempt ${attempt}`).to.be.within(ceiling / 2, ceiling);
    });
  });

  it('is jittered: capped delays vary, and two members redialling the same peer are not in lockstep', () => {
    const one = delays(new RedialSchedule(1, base, max), 3, 30);
    const two = delays(new RedialSchedule(2, base, max), 3, 30);
    expect(new Set(one.slice(10)).size, 'delays at the cap').to.be.greaterThan(10);
    const same = one.filter((delay, attempt) => delay === two[attempt]).length;
    expect(same, 'attempts at which members 1 and 2 wait exactly as long').to.be.below(5);
  });

  it('counts failures per peer and starts again from the first step after a handshake', () => {
    const schedule = new RedialSchedule(1, base, max);
    delays(schedule, 2, 8);
    expect(schedule.next(3), 'another peer starts at the first step').to.be.within(base / 2, base);
    expect(schedule.next(2), 'peer 2 is at its ninth failure').to.be.within(max / 2, max);
    schedule.reset(2);
    expect(schedule.next(2), 'after reset').to.be.within(base / 2, base);
  });
});

// Operator warnings: the limiter on a simulated clock, then a PeerNetwork on real loopback sockets facing
// a peer that drops every connection, one that is not listening, an authenticated peer sending a frame
// larger than the limit, and a stranger doing so before any handshake.
describe('peer network warnings', () => {
  it('the limiter logs the first warning of a kind, holds back the rest for the interval, then counts them', () => {
    let now = 0;
    const limiter = new WarningLimiter(30_000, () => now);
    expect(limiter.admit('unreachable 1')).to.equal(0);
    for (let i = 0; i < 29; i++) {
      now += 1000;
      expect(limiter.admit('unreachable 1'), `at ${now} ms`).to.equal(null);
    }
    expect(limiter.admit('unreachable 2'), 'another peer is its own kind').to.equal(0);
    now += 1000;
    expect(limiter.admit('unreachable 1'), 'the interval has passed: 29 held back').to.equal(29);
    expect(limiter.admit('unreachable 1')).to.equal(null);
  });

  it('the limiter forgets quiet keys once it holds many (strangers from ever-new addresses)', () => {
    let now = 0;
    const limiter = new WarningLimiter(1000, () => now);
    for (let i = 0; i < 5000; i++) {
      now += 1;
      expect(limiter.admit(`handshake 10.0.${i >> 8}.${i & 255}`)).to.equal(0);
    }
    now += 1000;
    expect(limiter.admit('handshake 10.0.0.0'), 'forgotten, so logged again with no count').to.equal(0);
  });

  type Warning = { fields: PeerWarningFields; message: string };
  let networks: PeerNetwork[] = [];
  let servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(networks.map((network) => network.stop()));
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    networks = [];
    servers = [];
  });

  /** Member `id` of `members` with its warnings collected (every one: none held back by the start grace). */
  const network = async (members: MemberConfig[], id: number, options: Partial<PeerNetworkOptions> = {}) => {
    const warnings: Warning[] = [];
    const peers = new PeerNetwork(
      peerOptions(members[id], members, {
        onMessage: () => {},
        warn: (fields, message) => warnings.push({ fields, message }),
        warnEveryMs: 60_000,
        startGraceMs: 0,
        backoffBaseMs: 5,
        backoffMaxMs: 10,
        ...options,
      }),
    );
    networks.push(peers);
    await peers.start();
    return warnings;
  };

  it('a peer that drops every connection is warned of once, however often it is redialled', async () => {
    const members = await memberConfigs(2);
    let dropped = 0;
    const server = createServer((socket) => {
      dropped++;
      socket.destroy();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(members[1].peerPort, '127.0.0.1', resolve));
    const warnings = await network(members, 0);
    await eventually(() => dropped >= 8, 'eight dials of peer 1', 20_000);
    expect(warnings).to.have.length(1);
    expect(warnings[0].fields.peer).to.equal(1);
    expect(warnings[0].message).to.match(/^connection to peer 1 closed before its handshake completed: /);
  });

  it('a peer nobody listens for is warned of as unreachable, with the address and the error', async () => {
    const members = await memberConfigs(2);
    const warnings = await network(members, 0);
    await eventually(() => warnings.length > 0, 'a warning', 20_000);
    expect(warnings[0].fields).to.deep.equal({
      peer: 1,
      remote: `127.0.0.1:${members[1].peerPort}`,
    });
    expect(warnings[0].message).to.contain(`peer 1 at 127.0.0.1:${members[1].peerPort} is unreachable (`);
    expect(warnings[0].message).to.contain('ECONNREFUSED');
  });

  it("a peer's graceful stop is not a lost connection (its unreachability afterwards is)", async () => {
    const members = await memberConfigs(2);
    const warnings = await network(members, 0);
    await network(members, 1);
    await eventually(() => networks[0].connectedPeers().length === 1, 'members 0 and 1 connected', 20_000);
    await networks[1].stop();
    await eventually(() => warnings.length > 0, 'a warning', 20_000);
    expect(warnings.map((warning) => warning.message)).to.not.include.members([
      'connection to peer 1 lost: closed by peer 1: member shutting down',
    ]);
    expect(warnings[0].message).to.contain('peer 1 at');
    expect(warnings[0].message).to.contain('is unreachable');
  });

  it('after a graceful stop a peer gets the start grace again: no unreachable warning while it restarts', async () => {
    const graced = await memberConfigs(2);
    const control = await memberConfigs(2);
    const gracedWarnings = await network(graced, 0, { startGraceMs: 60_000 });
    await network(graced, 1, { startGraceMs: 60_000 });
    const controlWarnings = await network(control, 0);
    await network(control, 1);
    await eventually(
      () => networks[0].connectedPeers().length === 1 && networks[2].connectedPeers().length === 1,
      'both pairs connected',
      20_000,
    );
    await Promise.all([networks[1].stop(), networks[3].stop()]);
    // The control pair, redialling on the same schedule with no grace, is warned of: dials have failed.
    await eventually(() => controlWarnings.length > 0, 'the control warning', 20_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(controlWarnings[0].message).to.contain('is unreachable');
    expect(gracedWarnings).to.deep.equal([]);
  });

  it('a frame larger than the limit from an authenticated peer: warned with the reason as the connection closes', async () => {
    const members = await memberConfigs(2);
    const warnings = await network(members, 1);
    const { connection, closed } = await dialAsPeer(members[1], members, 0);
    connection.send(PeerKind.CONSENSUS, Buffer.alloc(maxPeerFrameBytes({ maxFrameBytes: 1 << 20 }) + 1));
    await closed;
    await eventually(() => warnings.length > 0, 'a warning', 20_000);
    expect(warnings[0].fields.peer).to.equal(0);
    expect(warnings[0].message).to.match(/^connection to peer 0 lost: bad frame from .*\(FRAME_TOO_LARGE\)/);
  });

  it("a stranger's oversized frames before any handshake: one warning per address, naming the frame", async () => {
    const members = await memberConfigs(2);
    const warnings = await network(members, 1);
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32LE(0x7fffffff, 0);
    for (let i = 0; i < 5; i++) await rawExchange('127.0.0.1', members[1].peerPort, [header]);
    await eventually(() => warnings.length > 0, 'a warning', 20_000);
    expect(warnings).to.have.length(1);
    expect(warnings[0].fields).to.not.have.property('peer');
    expect(warnings[0].message).to.match(
      /^peer connection from 127\.0\.0\.1:\d+ closed before its handshake completed: bad frame .*\(FRAME_TOO_LARGE\)/,
    );
  });
});
