// Limits on every port of real member processes (client, peer, admin socket): slowloris connections are
// closed at the handshake or idle timeout, floods of idle connections from one address are refused past
// the per-address limit, and the admin socket takes a bounded number of connections. Every refusal names
// the setting that raises it; meanwhile clients keep writing, a restarted member rejoins, and no election
// happens.

import { createConnection, type Socket } from 'node:net';
import { expect } from 'chai';
import { adminSocketPath } from '../../runtime/admin.ts';
import { connectClient, RawConnection, TestCluster, writeOnce } from '../runtime/cluster/support.ts';
import { expectUndisturbed, reports } from './cluster.ts';

const LIMITS = {
  handshakeTimeoutMs: 1_000,
  idleTimeoutMs: 4_000,
  maxConnectionsPerAddress: 40,
  maxAdminConnections: 2,
};
/** The attacker's address: another loopback address, so the members' own connections are not counted with it. */
const ATTACKER = '127.0.0.2';

interface RawSocket {
  readonly socket: Socket;
  /** Everything the member sent (its GOODBYE reason included), once it closed the connection. */
  readonly closed: Promise<string>;
}

type Target = { host: string; port: number } | { path: string };

const openRaw = (target: Target): RawSocket => {
  const socket =
    'path' in target
      ? createConnection({ path: target.path })
      : createConnection({ host: target.host, port: target.port, localAddress: ATTACKER });
  let data = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    data = Buffer.concat([data, chunk]);
  });
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) =>
    socket.once('close', () => resolve(data.toString('latin1'))),
  );
  return { socket, closed };
};

/** Write one byte a second until the member closes the connection. */
const dribble = (raw: RawSocket, bytes: Buffer): void => {
  let at = 0;
  const timer = setInterval(() => {
    if (raw.socket.destroyed || at >= bytes.length) return;
    raw.socket.write(bytes.subarray(at, at + 1));
    at++;
  }, 1_000);
  void raw.closed.finally(() => clearInterval(timer));
};

/** Keep `count` connections open to `target`, opening a new one whenever the member closes one, until stopped. */
class Flood {
  readonly reasons: string[] = [];
  private readonly open = new Set<RawSocket>();
  private stopped = false;

  constructor(
    private readonly target: Target,
    count: number,
  ) {
    for (let i = 0; i < count; i++) this.add();
  }

  private add(): void {
    if (this.stopped) return;
    const raw = openRaw(this.target);
    this.open.add(raw);
    void raw.closed.then((reason) => {
      this.open.delete(raw);
      this.reasons.push(reason);
      setTimeout(() => this.add(), 20);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const closing = [...this.open].map((raw) => raw.closed);
    for (const raw of this.open) raw.socket.destroy();
    await Promise.all(closing);
  }
}

describe('security: limits on every port of real members', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let leader: number;

  before(async () => {
    cluster = await TestCluster.start({ members: 3, overrides: { limits: LIMITS } });
    leader = await cluster.whole();
  });
  after(() => cluster.close());

  const member = (id: number) => cluster.cluster.config.members[id];

  it('slowloris (1 byte/s) on the client, peer and admin ports: closed at limits.handshakeTimeoutMs, naming it; clients keep writing', async () => {
    const before = await reports(cluster);
    const follower = [0, 1, 2].find((id) => id !== leader) as number;
    const header = Buffer.from([0x40, 0, 0, 0, 2, 0, 10, 0]); // the start of a frame that never completes
    const slow = [
      ...Array.from({ length: 8 }, () =>
        openRaw({ host: member(leader).host, port: member(leader).clientPort }),
      ),
      ...Array.from({ length: 8 }, () =>
        openRaw({ host: member(follower).host, port: member(follower).peerPort }),
      ),
      ...Array.from({ length: 2 }, () =>
        openRaw({ path: adminSocketPath(cluster.cluster.memberDir(leader)) }),
      ),
    ];
    for (const raw of slow) dribble(raw, header);
    const client = await connectClient(cluster, { seed: 901 });
    try {
      for (let i = 0; i < 5; i++) await writeOnce(client, `slowloris/${i}`, 'ok');
      const reasons = await Promise.all(slow.map((raw) => raw.closed));
      for (const reason of reasons) {
        expect(reason).to.include('handshake not completed within 1000 ms; raise limits.handshakeTimeoutMs');
      }
      // Past the handshake: a session that then sends one byte a second is closed at the idle timeout.
      const raw = await RawConnection.open(`${member(leader).host}:${member(leader).clientPort}`);
      await raw.openSession();
      const socket = raw.connection.socket;
      let at = 0;
      const timer = setInterval(() => socket.writable && socket.write(header.subarray(at, ++at)), 1_000);
      try {
        const idleReason = await raw.closed(LIMITS.idleTimeoutMs * 5);
        expect(idleReason, idleReason).to.include(
          'idle: no complete frame for 4000 ms; send keepalives or raise limits.idleTimeoutMs',
        );
      } finally {
        clearInterval(timer);
      }
      await writeOnce(client, 'slowloris/after', 'ok');
    } finally {
      await client.close();
    }
    await expectUndisturbed(cluster, before);
  });

  it('floods of idle connections on every port: refused past the limits, naming them; new clients connect, a restarted member rejoins, no election', async () => {
    const before = await reports(cluster);
    const follower = [0, 1, 2].find((id) => id !== leader) as number;
    const client = await connectClient(cluster, { seed: 902 });
    const floods = [
      new Flood({ host: member(leader).host, port: member(leader).clientPort }, 200),
      ...[0, 1, 2].map((id) => new Flood({ host: member(id).host, port: member(id).peerPort }, 200)),
    ];
    try {
      await cluster.cluster.until(
        () => floods.every((flood) => flood.reasons.some((r) => r.includes('from 127.0.0.2'))),
        'flood connections refused on every port',
      );
      expect(floods[0].reasons.find((r) => r.includes('too many'))).to.include(
        `too many connections from ${ATTACKER}: member ${leader} client port accepts at most 40 per address; close some or raise limits.maxConnectionsPerAddress`,
      );
      expect(floods[1].reasons.find((r) => r.includes('too many'))).to.include(
        `too many connections in their handshake from ${ATTACKER}: member 0 peer port accepts at most 40 per address; close some or raise limits.maxConnectionsPerAddress`,
      );
      // The admin socket: past limits.maxAdminConnections, refused at once.
      const admin = Array.from({ length: 6 }, () =>
        openRaw({ path: adminSocketPath(cluster.cluster.memberDir(leader)) }),
      );
      const adminReasons = await Promise.all(admin.map((raw) => raw.closed));
      expect(adminReasons.filter((r) => r.includes('raise limits.maxAdminConnections'))).to.have.length(4);
      // A new client, and the existing one, write through the flood.
      const newcomer = await connectClient(cluster, { seed: 903 });
      try {
        await writeOnce(newcomer, 'flood/newcomer', 'ok');
        await writeOnce(client, 'flood/existing', 'ok');
      } finally {
        await newcomer.close();
      }
      // A follower restarted under the flood reconnects to every member.
      await cluster.cluster.kill(follower);
      cluster.restart(follower);
      await cluster.whole();
    } finally {
      await Promise.all(floods.map((flood) => flood.stop()));
    }
    // Releasing the flood causes no election.
    await writeOnce(client, 'flood/released', 'ok');
    await client.close();
    await expectUndisturbed(cluster, before);
  });
});
