import { expect } from 'chai';
import {
  allowAllAuthenticator,
  challengeResponse,
  challengeResponseAuthenticator,
  constantTimeEqual,
  seededNonceSource,
  sharedTokenAuthenticator,
  textBytes,
} from '../../../actors/sessions/authenticators.ts';

const TOKEN = 'a-shared-token-of-32-bytes-length';

describe('session authenticators', () => {
  it('shared token: the right token is accepted, a wrong or truncated one rejected', () => {
    const auth = sharedTokenAuthenticator({ token: TOKEN, principal: 'gateway' });
    expect(auth.onConnect(textBytes(TOKEN))).to.deep.equal({ kind: 'ACCEPT', principal: 'gateway' });
    for (const bad of [`${TOKEN.slice(0, -1)}X`, TOKEN.slice(0, -1), `${TOKEN}!`, '']) {
      const decision = auth.onConnect(textBytes(bad));
      expect(decision.kind, `token '${bad}'`).to.equal('REJECT');
    }
    expect(() => sharedTokenAuthenticator({ token: 'short' })).to.throw(/at least 16 bytes/);
  });

  it('constant-time comparison agrees with plain equality, lengths included', () => {
    const cases: Array<[number[], number[]]> = [
      [[], []],
      [
        [1, 2, 3],
        [1, 2, 3],
      ],
      [
        [1, 2, 3],
        [1, 2, 4],
      ],
      [
        [1, 2, 3],
        [1, 2],
      ],
      [[0], []],
      [[255, 0], [255]],
    ];
    for (const [a, b] of cases) {
      expect(constantTimeEqual(new Uint8Array(a), new Uint8Array(b)), `${a} vs ${b}`).to.equal(
        a.length === b.length && a.every((byte, i) => byte === b[i]),
      );
    }
  });

  it('challenge–response: a correct HMAC of the nonce is accepted', () => {
    const auth = challengeResponseAuthenticator({
      secrets: { alice: 'alice-secret' },
      nonces: seededNonceSource(3),
    });
    const decision = auth.onConnect(textBytes('alice'));
    if (decision.kind !== 'CHALLENGE') throw new Error(`expected a challenge, got ${decision.kind}`);
    expect(decision.challenge).to.have.length(32);
    const answer = challengeResponse('alice-secret', decision.challenge);
    expect(auth.onChallengeResponse(textBytes('alice'), decision.challenge, answer)).to.deep.equal({
      kind: 'ACCEPT',
      principal: 'alice',
    });
  });

  it('challenge–response: a wrong secret, a wrong length or an unknown principal is rejected', () => {
    const auth = challengeResponseAuthenticator({
      secrets: { alice: 'alice-secret' },
      nonces: seededNonceSource(3),
    });
    const decision = auth.onConnect(textBytes('alice'));
    if (decision.kind !== 'CHALLENGE') throw new Error('expected a challenge');
    const wrong = challengeResponse('guess', decision.challenge);
    expect(auth.onChallengeResponse(textBytes('alice'), decision.challenge, wrong).kind).to.equal('REJECT');
    expect(auth.onChallengeResponse(textBytes('alice'), decision.challenge, wrong.slice(1)).kind).to.equal(
      'REJECT',
    );
    expect(auth.onConnect(textBytes('mallory'))).to.deep.include({ kind: 'REJECT' });
    expect(auth.onConnect(textBytes('constructor')), 'no prototype keys').to.deep.include({ kind: 'REJECT' });
  });

  it('challenge–response: an answer replayed against a fresh challenge is rejected', () => {
    const auth = challengeResponseAuthenticator({
      secrets: { alice: 'alice-secret' },
      nonces: seededNonceSource(3),
    });
    const first = auth.onConnect(textBytes('alice'));
    const second = auth.onConnect(textBytes('alice'));
    if (first.kind !== 'CHALLENGE' || second.kind !== 'CHALLENGE') throw new Error('expected challenges');
    expect(Buffer.from(first.challenge).equals(Buffer.from(second.challenge)), 'nonces differ').to.equal(
      false,
    );
    const captured = challengeResponse('alice-secret', first.challenge);
    expect(auth.onChallengeResponse(textBytes('alice'), second.challenge, captured)).to.deep.include({
      kind: 'REJECT',
    });
  });

  it('nonces come from the injected seed: the same seed repeats, another differs', () => {
    const a = seededNonceSource(9)(21);
    expect(a).to.have.length(21);
    expect([...seededNonceSource(9)(21)]).to.deep.equal([...a]);
    expect([...seededNonceSource(10)(21)]).to.not.deep.equal([...a]);
    expect(() =>
      challengeResponseAuthenticator({ secrets: {}, nonces: seededNonceSource(1), nonceBytes: 8 }),
    ).to.throw(/nonceBytes is 8/);
  });

  it('allow-all accepts anyone and never challenges', () => {
    const auth = allowAllAuthenticator();
    expect(auth.onConnect(textBytes('dev'))).to.deep.equal({ kind: 'ACCEPT', principal: 'dev' });
    expect(auth.onConnect(new Uint8Array())).to.deep.equal({ kind: 'ACCEPT', principal: 'anonymous' });
    expect(auth.onChallengeResponse(new Uint8Array(), new Uint8Array(), new Uint8Array()).kind).to.equal(
      'REJECT',
    );
  });
});
