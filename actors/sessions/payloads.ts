// Payloads of the session log entries SESSION_OPEN and SESSION_CLOSE, msgpack-encoded. (SESSION_MESSAGE's
// payload is the consensus module's: actors/log/session-message.ts.)
//
// These bytes are replicated and replayed on every member, so decoding is strict: a payload that does
// not have the expected shape throws a `SessionPayloadError` naming the entry kind and the field (the
// same committed bytes fail the same way everywhere, so a member never silently diverges).
// Plain msgpack maps (no msgpackr records), so any msgpack implementation can read the log.

import { Packr } from 'msgpackr';
import type { CloseReasonName, ProtocolVersion } from '../../machines/client-session.ts';
import { CloseReason, closeReasonName } from '../../machines/client-session.ts';
import { RESUME_TOKEN_BYTES } from './resume-tokens.ts';

/**
 * Version of the payload layout; bump on an incompatible change and keep decoding old ones. 2: SESSION_OPEN
 * carries the hash of the session's resume token (a version-1 session cannot be resumed).
 */
export const SESSION_PAYLOAD_VERSION = 2;

const packr = new Packr({ useRecords: false, variableMapSize: true });

export class SessionPayloadError extends Error {
  override readonly name = 'SessionPayloadError';
}

/** SESSION_OPEN: the session id is the entry's log index, so it is not in the payload. */
export interface SessionOpenPayload {
  readonly principal: string;
  readonly clientVersion: ProtocolVersion;
  /** The member that led when the session was opened (for the inspector and diagnostics). */
  readonly openedBy: number;
  /** SHA-256 of the token that proves ownership on resume (resume-tokens.ts); null in version 1. */
  readonly resumeTokenHash: Uint8Array | null;
}

export interface SessionClosePayload {
  readonly sessionId: number;
  readonly reason: CloseReasonName;
}

type Fields = Record<string, unknown>;

const decodeMap = (what: string, payload: Uint8Array): Fields => {
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch (error) {
    throw new SessionPayloadError(`${what} payload is not valid msgpack: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SessionPayloadError(`${what} payload must be a msgpack map, got ${typeof value}`);
  }
  const fields = value as Fields;
  if (fields.v !== 1 && fields.v !== SESSION_PAYLOAD_VERSION) {
    throw new SessionPayloadError(
      `${what} payload version ${String(fields.v)} is not supported (this build reads ${SESSION_PAYLOAD_VERSION}): ` +
        'run a member version that wrote this log',
    );
  }
  return fields;
};

const integer = (what: string, fields: Fields, key: string): number => {
  const value = fields[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new SessionPayloadError(`${what} payload field '${key}' must be a non-negative integer`);
  }
  return value;
};

export const encodeSessionOpen = (payload: SessionOpenPayload): Uint8Array =>
  packr.pack({
    v: SESSION_PAYLOAD_VERSION,
    principal: payload.principal,
    clientVersion: [payload.clientVersion.major, payload.clientVersion.minor],
    openedBy: payload.openedBy,
    resumeTokenHash: payload.resumeTokenHash,
  });

export const decodeSessionOpen = (payload: Uint8Array): SessionOpenPayload => {
  const what = 'SESSION_OPEN';
  const fields = decodeMap(what, payload);
  if (typeof fields.principal !== 'string') {
    throw new SessionPayloadError(`${what} payload field 'principal' must be a string`);
  }
  const version = fields.clientVersion;
  if (!Array.isArray(version) || version.length !== 2 || !version.every(Number.isSafeInteger)) {
    throw new SessionPayloadError(`${what} payload field 'clientVersion' must be [major, minor]`);
  }
  const hash = fields.resumeTokenHash;
  if (fields.v !== 1 && !(hash instanceof Uint8Array && hash.length === RESUME_TOKEN_BYTES)) {
    throw new SessionPayloadError(
      `${what} payload field 'resumeTokenHash' must be ${RESUME_TOKEN_BYTES} bytes`,
    );
  }
  return {
    principal: fields.principal,
    clientVersion: { major: version[0], minor: version[1] },
    openedBy: integer(what, fields, 'openedBy'),
    resumeTokenHash: fields.v === 1 ? null : new Uint8Array(hash as Uint8Array),
  };
};

export const encodeSessionClose = (payload: SessionClosePayload): Uint8Array =>
  packr.pack({
    v: SESSION_PAYLOAD_VERSION,
    sessionId: payload.sessionId,
    reason: CloseReason[payload.reason],
  });

export const decodeSessionClose = (payload: Uint8Array): SessionClosePayload => {
  const what = 'SESSION_CLOSE';
  const fields = decodeMap(what, payload);
  const reason = closeReasonName(integer(what, fields, 'reason'));
  if (!reason) {
    throw new SessionPayloadError(
      `${what} payload field 'reason' is ${String(fields.reason)}, not one of ` +
        Object.entries(CloseReason)
          .map(([name, code]) => `${code} (${name})`)
          .join(', '),
    );
  }
  return { sessionId: integer(what, fields, 'sessionId'), reason };
};
