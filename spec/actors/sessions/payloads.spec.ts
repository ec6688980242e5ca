import { expect } from 'chai';
import { pack } from 'msgpackr';
import {
  decodeSessionClose,
  decodeSessionOpen,
  encodeSessionClose,
  encodeSessionOpen,
} from '../../../actors/sessions/payloads.ts';

describe('session entry payloads', () => {
  it('SESSION_OPEN and SESSION_CLOSE round-trip', () => {
    const open = {
      principal: 'alice',
      clientVersion: { major: 1, minor: 3 },
      openedBy: 2,
      resumeTokenHash: new Uint8Array(32).fill(7),
    };
    expect(decodeSessionOpen(encodeSessionOpen(open))).to.deep.equal(open);
    // A version-1 entry (written before resume tokens) still decodes: its session cannot be resumed.
    const v1 = pack({ v: 1, principal: 'bob', clientVersion: [1, 0], openedBy: 0 });
    expect(decodeSessionOpen(v1)).to.deep.include({ principal: 'bob', resumeTokenHash: null });
    for (const reason of ['CLIENT_ACTION', 'SERVICE_ACTION', 'TIMEOUT'] as const) {
      expect(decodeSessionClose(encodeSessionClose({ sessionId: 9, reason }))).to.deep.equal({
        sessionId: 9,
        reason,
      });
    }
  });

  it('the same payload always encodes to the same bytes (members agree byte for byte)', () => {
    const a = encodeSessionClose({ sessionId: 4, reason: 'TIMEOUT' });
    const b = encodeSessionClose({ sessionId: 4, reason: 'TIMEOUT' });
    expect(Buffer.from(a).equals(Buffer.from(b))).to.equal(true);
  });

  it('malformed payloads fail with an error naming the entry kind and the field', () => {
    expect(() => decodeSessionClose(pack({ v: 1, sessionId: 1, reason: 9 }))).to.throw(
      /SESSION_CLOSE payload field 'reason' is 9, not one of 1 \(CLIENT_ACTION\)/,
    );
    expect(() => decodeSessionClose(pack({ v: 1, sessionId: -1, reason: 1 }))).to.throw(/'sessionId'/);
    expect(() =>
      decodeSessionOpen(pack({ v: 1, principal: 5, clientVersion: [1, 0], openedBy: 0 })),
    ).to.throw(/SESSION_OPEN payload field 'principal'/);
    expect(() => decodeSessionOpen(pack({ v: 3 }))).to.throw(/version 3 is not supported/);
    expect(() =>
      decodeSessionOpen(
        pack({ v: 2, principal: 'a', clientVersion: [1, 0], openedBy: 0, resumeTokenHash: 'x' }),
      ),
    ).to.throw(/'resumeTokenHash' must be 32 bytes/);
    expect(() => decodeSessionClose(pack([1, 2]))).to.throw(/must be a msgpack map/);
    expect(() => decodeSessionOpen(new Uint8Array([0x85, 0xa1]))).to.throw(
      /SESSION_OPEN payload is not valid msgpack/,
    );
  });
});
