// The admin channel checks a request before the member acts on it: a malformed one is answered with the
// reason and never reaches the handler; a well-formed one does.

import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AdminServer, adminRequest, adminSocketPath } from '../../../runtime/admin.ts';
import { AdminKind, parseAdminRequest, parseAdminResponse } from '../../../runtime/wire/admin-frames.ts';
import { FramedConnection } from '../../../runtime/wire/transport.ts';

const limits = {
  maxConnections: { value: 4, setting: 'limits.maxAdminConnections' },
  handshakeTimeoutMs: { value: 5000, setting: 'limits.handshakeTimeoutMs' },
  idleTimeoutMs: { value: 5000, setting: 'limits.idleTimeoutMs' },
};

/** Send one raw REQUEST body on a fresh connection; resolves with the RESPONSE body. */
const rawRequest = (memberDir: string, body: unknown): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const socket = createConnection(adminSocketPath(memberDir));
    socket.once('error', reject);
    socket.once('connect', () => {
      const connection = new FramedConnection(socket, { maxFrameBytes: 1 << 20, name: 'test admin client' });
      connection.on('frame', (kind, answer) => {
        if (kind === AdminKind.RESPONSE) resolve(answer);
        else reject(new Error(`unexpected kind ${kind}`));
        connection.close('done');
      });
      connection.on('close', (reason) => reject(new Error(`closed: ${reason}`)));
      connection.send(AdminKind.REQUEST, body);
    });
  });

describe('admin frames', () => {
  it('parses a request: known commands, "to" only for transfer-leadership and only a member id', () => {
    expect(parseAdminRequest({ command: 'status' })).to.deep.equal({ command: 'status' });
    expect(parseAdminRequest({ command: 'transfer-leadership', to: 2 })).to.deep.equal({
      command: 'transfer-leadership',
      to: 2,
    });
    expect(parseAdminRequest({ command: 'transfer-leadership', to: null })).to.deep.equal({
      command: 'transfer-leadership',
    });
    expect(parseAdminRequest(null)).to.match(/must be an object/);
    expect(parseAdminRequest([{ command: 'status' }])).to.match(/must be an object/);
    expect(parseAdminRequest({ command: 'format-disk' })).to.match(/unknown admin command "format-disk"/);
    expect(parseAdminRequest({ command: 'status', extra: 1 })).to.match(/unexpected field "extra"/);
    expect(parseAdminRequest({ command: 'snapshot', to: 1 })).to.match(/transfer-leadership only/);
    for (const to of [-1, 1.5, '1', 2 ** 60]) {
      expect(parseAdminRequest({ command: 'transfer-leadership', to })).to.match(/must be a member id/);
    }
  });

  it('parses a response: ok with a result, or refused with an error string', () => {
    expect(parseAdminResponse({ ok: true, result: { a: 1 } })).to.deep.equal({ ok: true, result: { a: 1 } });
    expect(parseAdminResponse({ ok: false, error: 'no' })).to.deep.equal({ ok: false, error: 'no' });
    expect(parseAdminResponse({ ok: false })).to.match(/names no error/);
    expect(parseAdminResponse('yes')).to.match(/must be an object/);
  });

  describe('on a real admin socket', () => {
    let dir: string;
    let server: AdminServer;
    const handled: unknown[] = [];

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'chorus-admin-'));
      server = new AdminServer(dir, limits, (request) => {
        handled.push(request);
        return { answered: request.command };
      });
      await server.start();
    });

    after(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('answers a malformed request with the reason and never hands it to the member', async () => {
      const bodies = [
        { command: 'format-disk' },
        { command: 'transfer-leadership', to: 'all' },
        'status',
        { command: 'status', __proto__: { polluted: true }, extra: true },
      ];
      for (const body of bodies) {
        const answer = parseAdminResponse(await rawRequest(dir, body));
        expect(answer, JSON.stringify(body)).to.include({ ok: false });
      }
      expect(handled).to.deep.equal([]);
    });

    it('hands a well-formed request to the member and returns its answer', async () => {
      expect(await adminRequest(dir, { command: 'transfer-leadership', to: 1 })).to.deep.equal({
        answered: 'transfer-leadership',
      });
      expect(handled).to.deep.equal([{ command: 'transfer-leadership', to: 1 }]);
    });
  });
});
