import { expect } from 'chai';
import { MAX_CREDENTIALS_BYTES, parseClientRequest } from '../../../actors/sessions/requests.ts';

describe('client requests at the edge', () => {
  it('valid requests become session manager inputs for that connection and time', () => {
    const connect = parseClientRequest(3, 50, {
      type: 'CONNECT',
      credentials: Buffer.from('token'),
      protocolVersion: { major: 1, minor: 0 },
      resumeSessionId: 9,
    });
    expect(connect.ok).to.equal(true);
    expect(connect.ok && connect.input).to.deep.include({
      type: 'CONNECT',
      connectionId: 3,
      now: 50,
      resumeSessionId: 9,
    });
    const message = parseClientRequest(3, 51, {
      type: 'SESSION_MESSAGE',
      sessionId: 9,
      correlationId: 4,
      lowestAwaited: 2,
      body: new Uint8Array([1]),
    });
    expect(message.ok && message.input).to.deep.include({
      type: 'SESSION_MESSAGE',
      sessionId: 9,
      correlationId: 4,
      lowestAwaited: 2,
    });
  });

  it('malformed requests are refused with the field at fault, never reaching the manager', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'KEEPALIVE', sessionId: 1.5 }, /sessionId: .*int/],
      [{ type: 'SESSION_MESSAGE', sessionId: 1, correlationId: 1, body: 'text' }, /body/],
      [{ type: 'DROP_TABLES' }, /type: .*'CONNECT'/],
      [
        {
          type: 'CONNECT',
          credentials: new Uint8Array(MAX_CREDENTIALS_BYTES + 1),
          protocolVersion: { major: 1, minor: 0 },
        },
        /credentials must be at most 4096 bytes/,
      ],
      [
        { type: 'CONNECT', credentials: new Uint8Array(), protocolVersion: { major: '1', minor: 0 } },
        /protocolVersion\.major/,
      ],
      ['CONNECT', /bad client request/],
    ];
    for (const [body, expected] of cases) {
      const parsed = parseClientRequest(1, 0, body);
      expect(parsed.ok, JSON.stringify(body)).to.equal(false);
      expect(!parsed.ok && parsed.error).to.match(expected);
    }
  });
});
