// Pluggable authentication for client sessions. An authenticator is deterministic computation: no
// clock, no I/O, and any randomness (challenge nonces) comes from an injected source. The session
// manager consults it while a session is CONNECTED or CHALLENGED and keeps the challenge it issued,
// so an authenticator holds no per-connection state.
//
// Built in: allow-all (development), a shared token (compared in constant time), and
// challenge–response (the member sends a nonce, the client answers HMAC-SHA256(secret, nonce)).
// `node:crypto` is used only for HMAC computation, which is pure; randomness stays injected.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { Random } from '../../machines/random.ts';

export type AuthDecision =
  | { readonly kind: 'ACCEPT'; readonly principal: string }
  | { readonly kind: 'REJECT'; readonly reason: string }
  | { readonly kind: 'CHALLENGE'; readonly challenge: Uint8Array };

export type ChallengeDecision = Exclude<AuthDecision, { kind: 'CHALLENGE' }>;

export interface Authenticator {
  /** A short name for logs and the inspector. */
  readonly name: string;
  /** Judge the credentials a client sent with CONNECT. */
  onConnect(credentials: Uint8Array): AuthDecision;
  /** Judge a client's answer to the challenge this authenticator issued for the same connect. */
  onChallengeResponse(
    credentials: Uint8Array,
    challenge: Uint8Array,
    response: Uint8Array,
  ): ChallengeDecision;
}

/** Where challenge nonces come from: `length` unpredictable bytes per call. */
export type NonceSource = (length: number) => Uint8Array;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: false });

export const textBytes = (text: string): Uint8Array => utf8.encode(text);

/**
 * Compare two byte strings in time that depends only on their lengths, never on where they differ.
 * Pure code (no node:crypto) so it can be used anywhere in the functional core.
 */
export const constantTimeEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  const length = Math.max(a.length, b.length);
  let difference = a.length ^ b.length;
  for (let i = 0; i < length; i++) {
    // Out-of-range reads give undefined → 0, and the length difference is already counted.
    difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return difference === 0;
};

/** A nonce source driven by the seeded PRNG: reproducible in tests and in the simulator. */
export const seededNonceSource = (seed: number): NonceSource => {
  const random = new Random(seed);
  return (length) => {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const word = random.uint32();
      for (let j = 0; j < 4 && i + j < length; j++) bytes[i + j] = (word >>> (8 * j)) & 0xff;
    }
    return bytes;
  };
};

/** Development only: every client is accepted; the principal is its credentials as UTF-8. */
export const allowAllAuthenticator = (): Authenticator => ({
  name: 'allow-all',
  onConnect: (credentials) => ({
    kind: 'ACCEPT',
    principal: credentials.length > 0 ? fromUtf8.decode(credentials) : 'anonymous',
  }),
  onChallengeResponse: () => ({
    kind: 'REJECT',
    reason: 'allow-all authenticator never issues challenges: reconnect without a challenge response',
  }),
});

export interface SharedTokenOptions {
  /** The token every client must send as its credentials (at least 16 bytes). */
  readonly token: Uint8Array | string;
  /** The principal recorded for sessions it accepts. Default `token-client`. */
  readonly principal?: string;
}

/** Accepts clients whose credentials equal a shared token. */
export const sharedTokenAuthenticator = (options: SharedTokenOptions): Authenticator => {
  const token = typeof options.token === 'string' ? textBytes(options.token) : options.token;
  if (token.length < 16) {
    throw new RangeError(
      `shared token is ${token.length} bytes: use at least 16 bytes (e.g. 32 random bytes, base64)`,
    );
  }
  const principal = options.principal ?? 'token-client';
  return {
    name: 'shared-token',
    onConnect: (credentials) =>
      constantTimeEqual(credentials, token)
        ? { kind: 'ACCEPT', principal }
        : { kind: 'REJECT', reason: 'shared token does not match: check the client credentials' },
    onChallengeResponse: () => ({
      kind: 'REJECT',
      reason: 'shared-token authenticator never issues challenges: send the token with CONNECT',
    }),
  };
};

/** The answer a client computes for a challenge: HMAC-SHA256(secret, nonce). */
export const challengeResponse = (secret: Uint8Array | string, nonce: Uint8Array): Uint8Array =>
  new Uint8Array(createHmac('sha256', secret).update(nonce).digest());

export interface ChallengeResponseOptions {
  /** Secret per principal. A client's CONNECT credentials are its principal name in UTF-8. */
  readonly secrets: Readonly<Record<string, Uint8Array | string>>;
  /** Source of nonces; inject a seeded one in tests and simulation, a CSPRNG-backed one in production. */
  readonly nonces: NonceSource;
  /** Nonce length in bytes. Default 32. */
  readonly nonceBytes?: number;
}

/**
 * Challenge–response: CONNECT carries the principal; the member answers with a fresh nonce; the
 * client proves it knows the principal's secret by returning HMAC-SHA256(secret, nonce). A response
 * captured for one nonce is useless against another, so replays fail.
 */
export const challengeResponseAuthenticator = (options: ChallengeResponseOptions): Authenticator => {
  const nonceBytes = options.nonceBytes ?? 32;
  if (nonceBytes < 16) throw new RangeError(`nonceBytes is ${nonceBytes}: use at least 16`);
  const secretOf = (credentials: Uint8Array): { principal: string; secret: Uint8Array | string } | null => {
    const principal = fromUtf8.decode(credentials);
    const secret = Object.hasOwn(options.secrets, principal) ? options.secrets[principal] : undefined;
    return secret === undefined ? null : { principal, secret };
  };
  return {
    name: 'challenge-response',
    onConnect: (credentials) => {
      if (!secretOf(credentials)) {
        return { kind: 'REJECT', reason: 'unknown principal: configure a secret for it on every member' };
      }
      return { kind: 'CHALLENGE', challenge: options.nonces(nonceBytes) };
    },
    onChallengeResponse: (credentials, challenge, response) => {
      const known = secretOf(credentials);
      if (!known) {
        return { kind: 'REJECT', reason: 'unknown principal: configure a secret for it on every member' };
      }
      const expected = challengeResponse(known.secret, challenge);
      const ok = response.length === expected.length && timingSafeEqual(response, expected);
      return ok
        ? { kind: 'ACCEPT', principal: known.principal }
        : {
            kind: 'REJECT',
            reason: 'challenge response does not match: the client must answer HMAC-SHA256(secret, nonce)',
          };
    },
  };
};
