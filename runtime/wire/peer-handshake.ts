// How two members prove to each other that they hold the cluster's secret: an HMAC challenge carried by
// HELLO (the reasons for this choice over mutual TLS are in docs/architecture.md, "Peer authentication").
//
//   dialer   → acceptor  HELLO { memberId, members, nonce: Nd }
//   acceptor → dialer    HELLO { memberId, members, nonce: Na, proof: HMAC(k, accept|a|d|members|Nd|Na) }
//   dialer   → acceptor  PROOF { proof: HMAC(k, dial|d|a|members|Na|Nd) }
//
// Each side's proof covers the other side's fresh nonce, so a proof cannot be replayed on another
// connection; it names its role, sender and receiver, so it cannot be reflected back or passed off as
// another member's. Nothing a peer sends besides HELLO and PROOF is read before its proof checks out.
// Secrets: the first signs, any verifies (rotation: docs/runbook.md).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NONCE_BYTES } from './peer-frames.ts';

export type HandshakeRole = 'accept' | 'dial';

export interface ProofInput {
  readonly role: HandshakeRole;
  /** The member that signs. */
  readonly from: number;
  /** The member it proves itself to. */
  readonly to: number;
  /** The cluster's members string (both sides must agree on it). */
  readonly members: string;
  /** The other side's nonce (the challenge), then the signer's own. */
  readonly challenge: Uint8Array;
  readonly own: Uint8Array;
}

export const newNonce = (): Uint8Array => randomBytes(NONCE_BYTES);

const mac = (secret: Uint8Array, input: ProofInput): Buffer =>
  createHmac('sha256', secret)
    .update(`chorus-peer-proof-v1\n${input.role}\n${input.from}\n${input.to}\n${input.members}\n`)
    .update(input.challenge)
    .update(input.own)
    .digest();

/** The proof this member sends, signed with the first secret. */
export const signProof = (secrets: readonly Uint8Array[], input: ProofInput): Uint8Array => {
  if (secrets.length === 0) throw new Error('no peer secret configured (peerAuthentication)');
  return mac(secrets[0], input);
};

/** True if `proof` was signed with any of the secrets. */
export const verifyProof = (
  secrets: readonly Uint8Array[],
  input: ProofInput,
  proof: Uint8Array,
): boolean => {
  let ok = false;
  for (const secret of secrets) {
    const expected = mac(secret, input);
    if (expected.length === proof.length && timingSafeEqual(expected, proof)) ok = true;
  }
  return ok;
};
