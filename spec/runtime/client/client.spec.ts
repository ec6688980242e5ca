// The client library's shell against a member without consensus: a TCP listener, the real edge parser and
// the real session manager (leader), whose open and close entries commit at once and whose commands never
// do — a leader that is alive but cannot commit (a slow disk, a lost quorum not yet noticed). What is under
// test is how the client tells such a leader from a frozen one: it asks a silent member for a KEEPALIVE,
// which a live one answers whatever its log is doing.

import { expect } from 'chai';
import {
  type Authenticator,
  allowAllAuthenticator,
  challengeResponseAuthenticator,
  seededNonceSource,
} from '../../../actors/sessions/authenticators.ts';
import { parseClientRequest } from '../../../actors/sessions/requests.ts';
import { type SessionEffect, SessionManager } from '../../../actors/sessions/session-manager.ts';
import { seededOrder } from '../../../machines/client-connection.ts';
import { seedRandom } from '../../../machines/random.ts';
import { ChorusClient } from '../../../runtime/client/client.ts';
import { ClientKind } from '../../../runtime/wire/client-frames.ts';
import { type FramedConnection, TcpListener } from '../../../runtime/wire/transport.ts';
import { eventually, freePort } from '../../support/ports.ts';

/** Short, so a test sees several of them; the probe goes out at half of it. */
const REPLY_TIMEOUT_MS = 200;

/** A leader that answers session requests and never commits a command. */
class StuckLeader {
  readonly manager: SessionManager;
  private readonly connections = new Map<number, FramedConnection>();
  private nextConnectionId = 1;
  private lastIndex = 0;
  /** Requests the manager was handed, by type. */
  readonly requests: string[] = [];
  /** False: the process is stopped (SIGSTOP); frames are read by the kernel and never answered. */
  answering = true;
  readonly listener: TcpListener;

  constructor(
    readonly port: number,
    authenticator: Authenticator = allowAllAuthenticator(),
  ) {
    this.manager = new SessionManager({
      memberId: 0,
      maxSessions: 8,
      sessionTimeoutMs: 60_000,
      authenticator,
      resumeTokens: seededNonceSource(7),
    });
    this.run(this.manager.handle({ type: 'ROLE_CHANGED', now: performance.now(), leader: { kind: 'SELF' } }));
    this.listener = new TcpListener(
      {
        host: '127.0.0.1',
        port,
        maxFrameBytes: 1 << 20,
        name: 'stuck leader',
        maxConnections: { value: 16, setting: 'limits.test' },
      },
      (connection) => this.accept(connection),
    );
  }

  private accept(connection: FramedConnection): void {
    const connectionId = this.nextConnectionId++;
    this.connections.set(connectionId, connection);
    connection.establish();
    this.run(this.manager.handle({ type: 'CONNECTION_OPENED', now: performance.now(), connectionId }));
    connection.on('frame', (kind, body) => {
      if (!this.answering || kind !== ClientKind.CLIENT_REQUEST) return;
      const parsed = parseClientRequest(connectionId, performance.now(), body);
      if (!parsed.ok) throw new Error(parsed.error);
      this.requests.push(parsed.input.type);
      this.run(this.manager.handle(parsed.input));
    });
  }

  private run(effects: SessionEffect[]): void {
    for (const effect of effects) {
      if (effect.type === 'SEND') {
        this.connections.get(effect.connectionId)?.send(ClientKind.SESSION_EVENT, effect.event);
      } else if (effect.type === 'CLOSE_CONNECTION') {
        this.connections.get(effect.connectionId)?.close(effect.reason);
      } else if (effect.type === 'APPEND') {
        // Session entries commit at once; commands (FORWARD) never reach the log.
        const index = ++this.lastIndex;
        const now = performance.now();
        if (effect.connectionId !== undefined) {
          this.run(
            this.manager.handle({ type: 'OPEN_APPENDED', now, connectionId: effect.connectionId, index }),
          );
        }
        const entry = { index, term: 1, timestamp: Date.now(), kind: effect.kind, payload: effect.payload };
        this.run(this.manager.handle({ type: 'COMMITTED', now, entry }));
      }
    }
  }
}

describe('client library: a silent connection', function () {
  this.timeout(20_000);
  let leader: StuckLeader;
  let client: ChorusClient | null = null;
  const states: string[] = [];

  beforeEach(async () => {
    leader = new StuckLeader(await freePort());
    await leader.listener.start();
    states.length = 0;
    client = await ChorusClient.connect({
      endpoints: [`127.0.0.1:${leader.port}`],
      seed: 5,
      replyTimeoutMs: REPLY_TIMEOUT_MS,
      onStateChange: (state) => states.push(state),
    });
  });
  afterEach(async () => {
    leader.answering = true;
    await client?.close();
    await leader.listener.stop();
  });

  it('a leader that is alive but does not commit answers the KEEPALIVE probes: the client keeps its connection', async () => {
    const c = client as ChorusClient;
    const outcome = c.send(new Uint8Array([1]), { timeoutMs: 15_000 }).catch((error: Error) => error);
    // Five times the reply timeout with no reply: each silence was broken by a probe and its answer.
    await new Promise((resolve) => setTimeout(resolve, 5 * REPLY_TIMEOUT_MS));
    expect(leader.requests.filter((type) => type === 'KEEPALIVE').length, 'probes sent').to.be.at.least(2);
    expect(states, 'the connection was never given up').to.deep.equal(['CONNECTING', 'CONNECTED']);
    expect(leader.requests.filter((type) => type === 'CONNECT')).to.have.length(1);
    await c.close();
    expect(await outcome).to.be.instanceOf(Error);
  });

  it('a member that answers nothing (stopped) is left once the reply timeout passes, and the command resent on reconnect', async () => {
    const c = client as ChorusClient;
    const session = c.sessionId;
    leader.answering = false;
    const outcome = c.send(new Uint8Array([2]), { timeoutMs: 15_000 }).catch((error: Error) => error);
    await eventually(() => c.state !== 'CONNECTED', 'the client to give up the silent connection', 10_000);
    expect(states).to.include('AWAITING_NEW_LEADER');
    // The member comes back: the client resumes its session there and resends the command.
    leader.answering = true;
    await eventually(() => c.state === 'CONNECTED', 'the client to resume', 10_000);
    expect(c.sessionId, 'the same session, resumed').to.equal(session);
    await eventually(
      () => leader.requests.filter((type) => type === 'SESSION_MESSAGE').length >= 1,
      'the command resent',
      10_000,
    );
    await c.close();
    expect(await outcome).to.be.instanceOf(Error);
  });
});

describe('client library: a challenge it cannot answer', () => {
  it('a client without a secret, challenged by the member, gives up with the reason instead of waiting', async () => {
    const leader = new StuckLeader(
      await freePort(),
      challengeResponseAuthenticator({
        secrets: { alice: 'a secret of 32 bytes or so......' },
        nonces: seededNonceSource(3),
      }),
    );
    await leader.listener.start();
    try {
      const refused = await ChorusClient.connect({
        endpoints: [`127.0.0.1:${leader.port}`],
        seed: 6,
        credentials: 'alice',
        maxAttempts: 2,
      }).then(
        () => null,
        (error: Error) => error,
      );
      expect(refused?.message).to.match(/AUTHENTICATION_REJECTED: .*no secret was configured/);
      expect(leader.requests).to.deep.equal(['CONNECT']);
    } finally {
      await leader.listener.stop();
    }
  });
});

describe('client library: a member that sends malformed frames', function () {
  this.timeout(20_000);

  it('a REDIRECT without an endpoint is refused: the client drops that member and opens its session on the next', async () => {
    const good = new StuckLeader(await freePort());
    await good.listener.start();
    const hostilePort = await freePort();
    const hostile = new TcpListener(
      {
        host: '127.0.0.1',
        port: hostilePort,
        maxFrameBytes: 1 << 20,
        name: 'hostile member',
        maxConnections: { value: 16, setting: 'limits.test' },
      },
      (connection) => {
        connection.establish();
        connection.on('frame', () =>
          connection.send(ClientKind.SESSION_EVENT, { code: 'REDIRECT', leaderId: 1 }),
        );
      },
    );
    await hostile.start();
    const endpoints = [`127.0.0.1:${hostilePort}`, `127.0.0.1:${good.port}`];
    // A seed whose order tries the hostile member first.
    let seed = 1;
    while (seededOrder(endpoints, seedRandom(seed))[0][0] !== endpoints[0]) seed++;
    const states: string[] = [];
    let client: ChorusClient | null = null;
    try {
      client = await ChorusClient.connect({ endpoints, seed, onStateChange: (state) => states.push(state) });
      expect(client.state).to.equal('CONNECTED');
      expect(good.requests).to.include('CONNECT');
      expect(states).to.include('AWAITING_NEW_LEADER');
    } finally {
      await client?.close();
      await hostile.stop();
      await good.listener.stop();
    }
  });
});
