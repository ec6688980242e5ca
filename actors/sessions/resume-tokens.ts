// Proof that a client owns its session (issue 11: a session belongs to its owner).
//
// When the leader opens a session it draws a random resume token (from the injected source: the OS's
// CSPRNG on a real member), sends it to the client once, in OK, and puts only its SHA-256 in the
// SESSION_OPEN entry. Every member therefore holds the same hash from the log (and from snapshots), so
// whichever member leads after a failover can check a resume; no member, log or snapshot holds the
// token itself, and a 256-bit random token cannot be guessed from its hash. A resume that does not
// present it is refused before any authentication, so it never touches the owner's connection.
// `node:crypto` is used only for the hash, which is pure.

import { createHash } from 'node:crypto';
import { constantTimeEqual } from './authenticators.ts';

/** Length of a resume token, and of its hash (SHA-256). */
export const RESUME_TOKEN_BYTES = 32;

export const hashResumeToken = (token: Uint8Array): Uint8Array =>
  new Uint8Array(createHash('sha256').update(token).digest());

/** True only for a token of the right length whose hash is the one the session was opened with. */
export const isResumeTokenValid = (
  token: Uint8Array | null | undefined,
  expectedHash: Uint8Array | null,
): boolean =>
  token != null &&
  expectedHash !== null &&
  token.length === RESUME_TOKEN_BYTES &&
  constantTimeEqual(hashResumeToken(token), expectedHash);
