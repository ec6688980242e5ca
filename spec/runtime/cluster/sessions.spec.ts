// Process-level session tests against three real members: duplicate delivery (C2), idle sessions (C5),
// followers redirecting (C6), protocol versions (O4) and connection/session limits (R2). Raw connections
// send what the client library never would. The cluster runs with a short session timeout and a small
// session limit; every test closes the sessions it opens, so the limit test sees only its own. C5 stops
// the members to read their logs; like every test, the next one starts once the cluster is whole again.

import { createConnection, type Socket } from 'node:net';
import { expect } from 'chai';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { decodeSessionClose } from '../../../actors/sessions/payloads.ts';
import { openMemberStore } from '../../../persistence/index.ts';
import { SessionClosedError } from '../../../runtime/client/client.ts';
import { formatMembersString } from '../../../runtime/config.ts';
import { PeerKind } from '../../../runtime/peer-network.ts';
import { ClientKind } from '../../../runtime/wire/client-frames.ts';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION } from '../../../runtime/wire/frame-codec.ts';
import { TransportKind } from '../../../runtime/wire/transport.ts';
import {
  connectClient,
  expectAllPresent,
  FAILOVER_MS,
  kv,
  RawConnection,
  TestCluster,
  writeOnce,
} from './support.ts';

/** Just over twice a failover, about the least the configuration allows (2000 ms with the defaults). */
const SESSION_TIMEOUT_MS = 2 * FAILOVER_MS + 200;
const MAX_SESSIONS = 4;

/**
 * Send raw bytes to a member's port and resolve with the reason in its GOODBYE (or why there was none).
 * Used for frames a FramedConnection would never send: another wire protocol version.
 */
const goodbyeFor = (endpoint: { host: string; port: number }, bytes: Buffer, timeoutMs = 5000) =>
  new Promise<string>((resolve, reject) => {
    const socket: Socket = createConnection(endpoint);
    const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20 });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no GOODBYE within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk).frames) {
        if (frame.kind === TransportKind.GOODBYE) {
          clearTimeout(timer);
          socket.destroy();
          resolve(String((frame.body as { reason?: unknown }).reason));
        }
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error('connection closed without a GOODBYE giving a reason'));
    });
    socket.on('error', () => {});
  });

describe('cluster processes: sessions (C2, C5, C6, O4, R2)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  let leader: number;
  const raws: RawConnection[] = [];

  const raw = async (id: number): Promise<RawConnection> => {
    const connection = await RawConnection.open(cluster.endpoint(id));
    raws.push(connection);
    return connection;
  };

  before(async () => {
    cluster = await TestCluster.start({
      overrides: { sessionTimeoutMs: SESSION_TIMEOUT_MS, maxSessions: MAX_SESSIONS },
    });
  });
  beforeEach(async () => {
    leader = await cluster.whole();
  });
  afterEach(() => {
    for (const connection of raws.splice(0)) connection.close();
  });
  after(async () => {
    await cluster?.close();
  });

  it('C2: a command delivered twice (same session, same correlation id) is applied once and the retry gets the same reply', async () => {
    const connection = await raw(leader);
    const session = await connection.openSession();
    // cas from "absent": applied a second time it would answer { ok: false }.
    connection.sendCommand(session, 1, { op: 'cas', key: 'c2/once', expected: null, value: 'first' });
    expect(await connection.reply(1)).to.deep.equal({ ok: true });
    connection.sendCommand(session, 1, { op: 'cas', key: 'c2/once', expected: null, value: 'first' });
    expect(await connection.reply(1), 'reply to the retry').to.deep.equal({ ok: true });
    // A late retry of an older put, after a newer one: applied again it would undo the newer value.
    connection.sendCommand(session, 2, { op: 'put', key: 'c2/register', value: 'old' });
    expect(await connection.reply(2)).to.deep.equal({ ok: true });
    connection.sendCommand(session, 3, { op: 'put', key: 'c2/register', value: 'new' });
    expect(await connection.reply(3)).to.deep.equal({ ok: true });
    connection.sendCommand(session, 2, { op: 'put', key: 'c2/register', value: 'old' });
    expect(await connection.reply(2), 'reply to the late retry').to.deep.equal({ ok: true });
    // Two copies back to back, both in the log before either is applied: both answered alike.
    connection.sendCommand(session, 4, { op: 'cas', key: 'c2/twice', expected: null, value: 'z' });
    connection.sendCommand(session, 4, { op: 'cas', key: 'c2/twice', expected: null, value: 'z' });
    expect([await connection.reply(4), await connection.reply(4)]).to.deep.equal([
      { ok: true },
      { ok: true },
    ]);
    connection.sendCommand(session, 5, { op: 'get', key: 'c2/register' });
    expect(await connection.reply(5), 'the register after the late retry').to.deep.equal({ value: 'new' });
    connection.request({ type: 'CLOSE', sessionId: session });
    const closed = await connection.sessionEvent('CLOSED');
    expect(closed.body).to.deep.equal({ code: 'CLOSED', sessionId: session, reason: 'CLIENT_ACTION' });

    const reader = await connectClient(cluster, { seed: 201 });
    try {
      await expectAllPresent(
        reader,
        new Map([
          ['c2/once', 'first'],
          ['c2/register', 'new'],
          ['c2/twice', 'z'],
        ]),
      );
    } finally {
      await reader.close();
    }
  });

  it('C5: a session idle past its timeout is closed with reason TIMEOUT — the client is told, the close is committed to the log; an active one stays open', async () => {
    const connection = await raw(leader);
    const session = await connection.openSession();
    const openedAt = performance.now();
    const active = await connectClient(cluster, { seed: 301 });
    // A client library session that stays silent past the timeout (a stalled client process).
    const silent = await connectClient(cluster, { seed: 302, keepaliveIntervalMs: SESSION_TIMEOUT_MS * 10 });
    try {
      const event = await connection.sessionEvent('CLOSED for the idle session', SESSION_TIMEOUT_MS * 3);
      const idleMs = performance.now() - openedAt;
      expect(event.body).to.deep.equal({ code: 'CLOSED', sessionId: session, reason: 'TIMEOUT' });
      expect(idleMs, 'ms idle before the close').to.be.at.least(SESSION_TIMEOUT_MS - 50);
      expect(await connection.closed(), 'the member closes the connection').to.include('TIMEOUT');
      // The session is gone for good: resuming it is refused, and says why.
      const again = await raw(leader);
      again.connect(undefined, session, connection.resumeToken);
      const refusal = await again.sessionEvent('refusal to resume');
      expect(refusal.body.code).to.equal('RESUME_REFUSED');
      expect(refusal.body.detail).to.include(`session ${session} is not open`);
      // The client library is told too: its session is CLOSED, and sending fails saying why.
      await cluster.cluster.until(() => silent.state === 'CLOSED', 'the silent client to be told', 5000);
      const error = await silent.send(new Uint8Array(0)).then(
        () => null,
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(SessionClosedError);
      expect(error?.message).to.include('TIMEOUT');
      // The client library's session, kept alive by its keepalives over the same time, still works.
      expect(active.state).to.equal('CONNECTED');
      await writeOnce(active, 'c5/active', 'yes');
      await expectAllPresent(active, new Map([['c5/active', 'yes']]));
    } finally {
      await Promise.all([active.close(), silent.close()]);
    }
    // The close is a committed SESSION_CLOSE entry, so every member's service sees it at the same log
    // position: it is in a majority of the logs (read with the members stopped; the next test restarts them).
    const timedOut = [session, silent.sessionId];
    await Promise.all([0, 1, 2].map((id) => cluster.cluster.kill(id)));
    let holding = 0;
    for (const id of [0, 1, 2]) {
      const store = await openMemberStore(cluster.cluster.memberDir(id));
      try {
        const closed = store.log
          .read(store.log.firstIndex, store.log.lastIndex)
          .filter((entry) => entry.kind === EntryKind.SESSION_CLOSE)
          .map((entry) => decodeSessionClose(entry.payload))
          .filter((close) => close.reason === 'TIMEOUT')
          .map((close) => close.sessionId);
        if (timedOut.every((id) => closed.includes(id as number))) holding++;
      } finally {
        await store.close();
      }
    }
    expect(holding, 'logs holding both TIMEOUT closes').to.be.at.least(2);
  });

  it('C6: a follower answers CONNECT with REDIRECT naming the leader, and the client follows it', async () => {
    const follower = [0, 1, 2].find((id) => id !== leader) as number;
    const connection = await raw(follower);
    connection.connect();
    const event = await connection.sessionEvent('REDIRECT');
    expect(event.body).to.deep.equal({
      code: 'REDIRECT',
      leaderId: leader,
      endpoint: cluster.endpoint(leader),
    });
    expect(await connection.closed()).to.include(`redirected to leader ${leader}`);
    // A client that only knows the follower still reaches the leader.
    const states: string[] = [];
    const client = await connectClient(cluster, {
      endpoints: [cluster.endpoint(follower)],
      seed: 401,
      onStateChange: (state) => states.push(state),
    });
    try {
      expect(client.leaderId).to.equal(leader);
      await writeOnce(client, 'c6/through-follower', 'v');
      await expectAllPresent(client, new Map([['c6/through-follower', 'v']]));
      // Straight to the leader: no waiting for a leader, no backing off.
      expect(states.filter((state) => state !== 'CONNECTING')).to.deep.equal(['CONNECTED']);
    } finally {
      await client.close();
    }
  });

  it('O4: a client with an incompatible session protocol version is refused with a clear reason', async () => {
    const connection = await raw(leader);
    connection.connect({ major: 2, minor: 0 });
    const event = await connection.sessionEvent('refusal');
    expect(event.body.code).to.equal('ERROR');
    expect(event.body.retryable).to.equal(false);
    expect(event.body.detail).to.include('client protocol version 2.0 is incompatible');
    expect(event.body.detail).to.include('upgrade the client library');
    await connection.closed();
    // A client frame in another wire protocol version is refused before it is read.
    const { host, clientPort } = cluster.cluster.config.members[leader];
    const reason = await goodbyeFor(
      { host, port: clientPort },
      encodeFrame(
        ClientKind.CLIENT_REQUEST,
        { type: 'CONNECT', credentials: new Uint8Array(0), protocolVersion: { major: 1, minor: 0 } },
        PROTOCOL_VERSION + 1,
      ),
    );
    expect(reason).to.include('UNSUPPORTED_VERSION');
  });

  it('O4: a peer speaking another wire protocol version, or with another member list, is refused with a clear reason', async () => {
    const target = [0, 1, 2].find((id) => id !== 0) as number;
    const { host, peerPort } = cluster.cluster.config.members[target];
    const members = formatMembersString(cluster.cluster.config.members);
    const versionReason = await goodbyeFor(
      { host, port: peerPort },
      encodeFrame(PeerKind.HELLO, { memberId: 0, members }, PROTOCOL_VERSION + 1),
    );
    expect(versionReason).to.include('UNSUPPORTED_VERSION');
    expect(versionReason).to.include(String(PROTOCOL_VERSION + 1));
    const configReason = await goodbyeFor(
      { host, port: peerPort },
      encodeFrame(PeerKind.HELLO, {
        memberId: 0,
        members: `${members}|3,127.0.0.1:1:2`,
        nonce: new Uint8Array(32),
      }),
    );
    expect(configReason).to.include('give every member the same configuration');
    // The cluster carries on as before.
    expect(cluster.cluster.leader()).to.equal(leader);
    const client = await connectClient(cluster, { seed: 501 });
    try {
      await writeOnce(client, 'o4/after', 'ok');
      await expectAllPresent(client, new Map([['o4/after', 'ok']]));
    } finally {
      await client.close();
    }
  });

  it('R2: sessions and connections over the limits are refused with a reason; existing ones keep working', async () => {
    const clients = await Promise.all(
      Array.from({ length: MAX_SESSIONS }, (_, i) => connectClient(cluster, { seed: 600 + i })),
    );
    try {
      // One session more: refused, saying which limit and what to do.
      const extra = await raw(leader);
      extra.connect();
      const refusal = await extra.sessionEvent('session limit refusal');
      expect(refusal.body.code).to.equal('ERROR');
      expect(refusal.body.retryable, 'a session limit is worth retrying later').to.equal(true);
      expect(refusal.body.detail).to.include(`session limit reached (maxSessions=${MAX_SESSIONS})`);
      // The client library gives up after its attempts with the same reason.
      const refused = await connectClient(cluster, { seed: 700, maxAttempts: 2 }).then(
        () => null,
        (error: Error) => error,
      );
      expect(refused).to.be.instanceOf(SessionClosedError);
      expect(refused?.message).to.include('session limit reached');
      // Connections over the transport limit (2 × maxSessions) are refused at once, with a reason.
      const idle: RawConnection[] = [];
      for (let i = 0; i < MAX_SESSIONS * 2 - MAX_SESSIONS; i++) idle.push(await raw(leader));
      const over = await raw(leader);
      expect(await over.closed()).to.include(`accepts at most ${MAX_SESSIONS * 2}`);
      // Every existing session still works.
      const written = new Map<string, string>();
      await Promise.all(
        clients.map((client, i) => {
          written.set(`r2/${i}`, `v${i}`);
          return writeOnce(client, `r2/${i}`, `v${i}`);
        }),
      );
      for (const connection of idle) connection.close();
      // With one session closed, a new one is accepted.
      await clients.pop()?.close();
      const later = await connectClient(cluster, { seed: 701 });
      clients.push(later);
      expect(await kv(later, { op: 'get', key: 'r2/0' })).to.deep.equal({ value: 'v0' });
      await expectAllPresent(later, written);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });
});
