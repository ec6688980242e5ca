// Every frame a member accepts from a peer, and the check each one passes before anything reads it. A
// peer frame is HELLO or PROOF during the handshake (runtime/wire/peer-handshake.ts), then CONSENSUS: one
// of the consensus core's messages (actors/consensus/types.ts). A frame that fails its check closes that
// connection with the returned reason and never reaches the consensus module or the log.
//
// The checks are written by hand rather than with zod: APPEND is the replication hot path, and its entries
// travel as one flat array (protocol version 2) that is checked and rebuilt in one pass.

import { unpack } from 'msgpackr';
import type { PeerMessage } from '../../actors/consensus/types.ts';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';

export const PeerKind = {
  /** { memberId, members, nonce[, proof] } — the first frame each way (the acceptor's carries its proof). */
  HELLO: 1,
  /** A consensus message: a plain object with a string `type` (after the handshake only). */
  CONSENSUS: 2,
  /** { proof } — the dialer's answer to the acceptor's challenge. */
  PROOF: 3,
} as const;

/**
 * The largest term, index or timestamp a peer may send: far beyond any real cluster (a term a
 * millisecond for 8,900 years), and far enough below 2^53 that the core's `term + 1` stays exact.
 */
export const MAX_WIRE_INTEGER = 2 ** 48;

/** Bounds a member checks peer messages against (from the configuration). */
export interface PeerFrameLimits {
  /** The largest entry payload (maxEntryPayloadBytes). */
  readonly maxEntryPayloadBytes: number;
}

const KNOWN_ENTRY_KINDS: ReadonlySet<number> = new Set(Object.values(EntryKind));
const APPEND_ENTRY_FIELDS = 5;

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_WIRE_INTEGER;

type Fields = Record<string, unknown>;

/** The first problem with the named counts (whole numbers 0..MAX_WIRE_INTEGER), or null. */
const checkCounts = (type: string, body: Fields, names: readonly string[]): string | null => {
  for (const name of names) {
    if (!isCount(body[name])) {
      return `${type}.${name} must be a whole number in 0..2^48, got ${describe(body[name])}`;
    }
  }
  return null;
};

const checkBooleans = (type: string, body: Fields, names: readonly string[]): string | null => {
  for (const name of names) {
    if (typeof body[name] !== 'boolean')
      return `${type}.${name} must be a boolean, got ${describe(body[name])}`;
  }
  return null;
};

const describe = (value: unknown): string => {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object';
  const text = String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
};

/** A term's log term cannot be ahead of it: a member's log holds no entry from a term it has not reached. */
const checkNotAhead = (type: string, body: Fields, field: string): string | null =>
  (body[field] as number) > (body.term as number)
    ? `${type}.${field} ${body[field]} is ahead of its term ${body.term}`
    : null;

/** The fields of each consensus message kind: whole-number counts, booleans, and a log term not ahead of `term`. */
interface Shape {
  readonly counts: readonly string[];
  readonly booleans?: readonly string[];
  readonly notAhead?: string;
}

const SHAPES = new Map<string, Shape>([
  [
    'CANVASS_POSITION',
    { counts: ['term', 'logTerm', 'logIndex', 'round'], booleans: ['reply'], notAhead: 'logTerm' },
  ],
  ['REQUEST_VOTE', { counts: ['term', 'logTerm', 'logIndex'], booleans: ['transfer'], notAhead: 'logTerm' }],
  ['VOTE', { counts: ['term'], booleans: ['granted'] }],
  [
    'APPEND_RESPONSE',
    { counts: ['term', 'matchIndex', 'rejectedIndex', 'hintIndex', 'hintTerm'], booleans: ['success'] },
  ],
  ['TIMEOUT_NOW', { counts: ['term'] }],
  ['INSTALL_SNAPSHOT', { counts: ['term', 'index', 'snapshotTerm'], notAhead: 'snapshotTerm' }],
  [
    'APPEND',
    { counts: ['term', 'prevIndex', 'prevTerm', 'commitIndex', 'leaderLastIndex'], notAhead: 'prevTerm' },
  ],
]);

/** A consensus message from a peer, checked field by field and rebuilt from the checked fields; or why not. */
export const parseConsensusMessage = (body: unknown, limits: PeerFrameLimits): PeerMessage | string => {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return 'a consensus message must be an object with a string type';
  }
  const m = body as Fields;
  const type = m.type;
  const shape = typeof type === 'string' ? SHAPES.get(type) : undefined;
  if (shape === undefined) return `unknown consensus message type ${describe(type)}`;
  const problem =
    checkCounts(type as string, m, shape.counts) ??
    checkBooleans(type as string, m, shape.booleans ?? []) ??
    (shape.notAhead ? checkNotAhead(type as string, m, shape.notAhead) : null);
  if (problem) return problem;
  const checked: Fields = { type };
  for (const field of shape.counts) checked[field] = m[field];
  for (const field of shape.booleans ?? []) checked[field] = m[field];
  if (type === 'APPEND') return parseAppend(m, checked, limits);
  if (type === 'INSTALL_SNAPSHOT') {
    const snapshotProblem =
      (m.index === 0 ? 'INSTALL_SNAPSHOT.index must be at least 1' : null) ?? checkSnapshotData(m.data);
    if (snapshotProblem) return snapshotProblem;
    checked.data = m.data;
  }
  return checked as unknown as PeerMessage;
};

/**
 * APPEND (protocol version 2): `entries` is one flat array, ENTRY_FIELDS values per entry (index, term,
 * timestamp, kind, payload). Entries must follow prevIndex one by one, with terms that never go down, from
 * prevTerm up to the message's term, known kinds, and payloads within the limit.
 */
const parseAppend = (m: Fields, checked: Fields, limits: PeerFrameLimits): PeerMessage | string => {
  const flat = m.entries;
  if (!Array.isArray(flat) || flat.length % APPEND_ENTRY_FIELDS !== 0) {
    return `APPEND.entries must be a flat array of ${APPEND_ENTRY_FIELDS} fields per entry (index, term, timestamp, kind, payload)`;
  }
  const term = m.term as number;
  const prevIndex = m.prevIndex as number;
  const count = flat.length / APPEND_ENTRY_FIELDS;
  if ((m.leaderLastIndex as number) < prevIndex + count) {
    return `APPEND.leaderLastIndex ${m.leaderLastIndex} is behind its own last entry ${prevIndex + count}`;
  }
  if ((m.commitIndex as number) > (m.leaderLastIndex as number)) {
    return `APPEND.commitIndex ${m.commitIndex} is past leaderLastIndex ${m.leaderLastIndex}`;
  }
  const entries: LogEntry[] = new Array(count);
  let lastTerm = m.prevTerm as number;
  for (let i = 0, j = 0; i < count; i++, j += APPEND_ENTRY_FIELDS) {
    const index = flat[j];
    const entryTerm = flat[j + 1];
    const timestamp = flat[j + 2];
    const kind = flat[j + 3];
    const payload = flat[j + 4];
    if (!isCount(index) || !isCount(entryTerm) || !isCount(timestamp)) {
      return `APPEND entry ${i}: index, term and timestamp must be whole numbers in 0..2^48`;
    }
    if (index !== prevIndex + 1 + i) {
      return `APPEND entry ${i} has index ${index}, expected ${prevIndex + 1 + i}: entries must follow prevIndex without gaps`;
    }
    if (entryTerm < lastTerm || entryTerm > term) {
      return `APPEND entry ${index} has term ${entryTerm}: entry terms must not go down and not pass the message's term ${term}`;
    }
    if (typeof kind !== 'number' || !KNOWN_ENTRY_KINDS.has(kind)) {
      return `APPEND entry ${index} has unknown kind ${describe(kind)}`;
    }
    if (!(payload instanceof Uint8Array)) return `APPEND entry ${index} must carry a binary payload`;
    if (payload.length > limits.maxEntryPayloadBytes) {
      return `APPEND entry ${index} payload of ${payload.length} bytes exceeds ${limits.maxEntryPayloadBytes} (derived from maxFrameBytes)`;
    }
    lastTerm = entryTerm;
    entries[i] = { index, term: entryTerm, timestamp, kind: kind as EntryKind, payload };
  }
  checked.entries = entries;
  return checked as unknown as PeerMessage;
};

/** A snapshot image is msgpack { module: bytes | null, service: bytes | null }, its module part msgpack too. */
const checkSnapshotData = (data: unknown): string | null => {
  if (!(data instanceof Uint8Array)) return 'INSTALL_SNAPSHOT.data must be bytes';
  let image: unknown;
  try {
    image = unpack(data);
  } catch {
    return 'INSTALL_SNAPSHOT.data is not msgpack';
  }
  const parts = image as { module?: unknown; service?: unknown } | null;
  if (typeof parts !== 'object' || parts === null)
    return 'INSTALL_SNAPSHOT.data must hold { module, service }';
  for (const part of ['module', 'service'] as const) {
    const value = parts[part];
    if (value !== null && !(value instanceof Uint8Array)) {
      return `INSTALL_SNAPSHOT.data.${part} must be bytes or null`;
    }
  }
  if (parts.module instanceof Uint8Array) {
    try {
      const module = unpack(parts.module);
      if (typeof module !== 'object' || module === null)
        return 'INSTALL_SNAPSHOT.data.module must hold an object';
    } catch {
      return 'INSTALL_SNAPSHOT.data.module is not msgpack';
    }
  }
  return null;
};

/** A consensus message as it goes on the wire: APPEND's entries flattened (see parseAppend). */
export const toWire = (message: object): object => {
  const append = message as { type?: unknown; entries?: readonly LogEntry[] };
  if (append.type !== 'APPEND' || !Array.isArray(append.entries)) return message;
  const entries = append.entries;
  const flat: unknown[] = new Array(entries.length * APPEND_ENTRY_FIELDS);
  for (let i = 0, j = 0; i < entries.length; i++, j += APPEND_ENTRY_FIELDS) {
    const entry = entries[i];
    flat[j] = entry.index;
    flat[j + 1] = entry.term;
    flat[j + 2] = entry.timestamp;
    flat[j + 3] = entry.kind;
    flat[j + 4] = entry.payload;
  }
  return { ...message, entries: flat };
};

/** The HELLO a peer sent, checked for shape (who it claims to be is checked by the peer network). */
export interface Hello {
  readonly memberId: number;
  readonly members: string;
  readonly nonce: Uint8Array;
  readonly proof?: Uint8Array;
}

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;

export const parseHello = (kind: number, body: unknown): Hello | string => {
  if (kind !== PeerKind.HELLO) return `first frame must be HELLO (kind ${PeerKind.HELLO}), got kind ${kind}`;
  const hello = body as Fields | null;
  if (typeof hello !== 'object' || hello === null) return 'HELLO must be an object';
  if (!isCount(hello.memberId)) return 'HELLO.memberId must name the member (a whole number)';
  if (typeof hello.members !== 'string' || hello.members.length > 64 * 1024) {
    return 'HELLO.members must be the members string of the configuration';
  }
  if (!(hello.nonce instanceof Uint8Array) || hello.nonce.length !== NONCE_BYTES) {
    return `HELLO.nonce must be ${NONCE_BYTES} random bytes (a member of an older build? upgrade every member)`;
  }
  if (
    hello.proof !== undefined &&
    (!(hello.proof instanceof Uint8Array) || hello.proof.length !== PROOF_BYTES)
  ) {
    return `HELLO.proof must be ${PROOF_BYTES} bytes`;
  }
  return {
    memberId: hello.memberId,
    members: hello.members,
    nonce: hello.nonce,
    ...(hello.proof instanceof Uint8Array ? { proof: hello.proof } : {}),
  };
};

export const parseProof = (kind: number, body: unknown): Uint8Array | string => {
  if (kind !== PeerKind.PROOF)
    return `the dialer's second frame must be PROOF (kind ${PeerKind.PROOF}), got kind ${kind}`;
  const proof = (body as Fields | null)?.proof;
  if (!(proof instanceof Uint8Array) || proof.length !== PROOF_BYTES)
    return `PROOF.proof must be ${PROOF_BYTES} bytes`;
  return proof;
};
