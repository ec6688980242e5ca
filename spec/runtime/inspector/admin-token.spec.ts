// The admin HTTP listener off loopback: the configuration refuses it without a token, and a member bound to
// every interface answers nothing — HTTP or its live socket — without `Authorization: Bearer <token>`.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { ConfigError, validateClusterConfig } from '../../../runtime/config.ts';
import { freePorts } from '../../../runtime/local-cluster.ts';
import { Member } from '../../../runtime/member.ts';
import { getJson, RecordingSocket } from './support.ts';

const TOKEN = 'an-admin-token-of-some-length';

describe('inspector server: the admin HTTP listener off loopback', function () {
  this.timeout(30_000);
  let root: string;
  let member: Member | null = null;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'chorus-admin-token-'));
  });
  afterEach(async () => {
    await member?.stop();
    member = null;
    rmSync(root, { recursive: true, force: true });
  });

  it('a configuration binding it anywhere but loopback without a token is refused, naming adminHttp.token', () => {
    const members = [{ id: 0, host: '127.0.0.1', clientPort: 7001, peerPort: 7002, adminHttpPort: 7003 }];
    expect(() => validateClusterConfig({ members, adminHttp: { host: '0.0.0.0' } }))
      .to.throw(ConfigError)
      .with.property('message')
      .that.matches(/adminHttp\.token: is required when adminHttp\.host is 0\.0\.0\.0/);
    expect(() =>
      validateClusterConfig({ members, adminHttp: { host: '0.0.0.0', token: TOKEN } }),
    ).not.to.throw();
    expect(() => validateClusterConfig({ members })).not.to.throw(); // loopback by default
    expect(() =>
      validateClusterConfig({
        members: [{ ...members[0], adminHttpPort: 7001 }],
      }),
    ).to.throw(
      /members\[0\]\.adminHttpPort: port 7001 on 127\.0\.0\.1 is already taken by members\[0\]\.clientPort/,
    );
  });

  it('bound to 0.0.0.0 with a token, every request and the live socket need the bearer token', async () => {
    const [clientPort, peerPort, adminHttpPort] = await freePorts(3);
    const config = validateClusterConfig({
      members: [{ id: 0, host: '127.0.0.1', clientPort, peerPort, adminHttpPort }],
      dir: join(root, 'data'),
      adminHttp: { host: '0.0.0.0', token: TOKEN },
    });
    member = await Member.start({ config, memberId: 0, logger: pino({ level: 'silent' }) });
    const url = `http://127.0.0.1:${adminHttpPort}`;
    const refusedHeaders: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-of-some-length' },
      { authorization: TOKEN },
    ];
    for (const path of ['/state', '/metrics', '/log', '/actors']) {
      for (const headers of refusedHeaders) {
        const { status, body } = await getJson(`${url}${path}`, headers);
        expect(status, `${path} with ${JSON.stringify(headers)}`).to.equal(401);
        expect(body.error).to.match(/Authorization: Bearer <token>/);
      }
    }
    const state = await getJson(`${url}/state`, { authorization: `Bearer ${TOKEN}` });
    expect(state.status).to.equal(200);
    expect(state.body.memberId).to.equal(0);
    const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(metrics.status).to.equal(200);
    const ws = url.replace('http', 'ws');
    let refused: unknown = null;
    await RecordingSocket.open(`${ws}/live`).then(
      (socket) => socket.close(),
      (error) => {
        refused = error;
      },
    );
    expect(String(refused)).to.match(/HTTP 401/);
    const socket = await RecordingSocket.open(`${ws}/live`, { authorization: `Bearer ${TOKEN}` });
    const first = await socket.next(
      (m) => m.type === 'state',
      'a state',
      10 * config.leaderHeartbeatTimeoutMs,
    );
    socket.close();
    expect(first.state.memberId).to.equal(0);
  });
});
