// The replicated log's entry: the one shape every layer (consensus core, store, actor runtime) shares.
// Pure data, no I/O. The store adds and checks a CRC32C over the encoded entry; in memory an entry
// carries none.

/** What a log entry records. Numeric codes are part of the on-disk format: never renumber. */
export const EntryKind = {
  /** A client session opened (payload: session id, response channel, principal). */
  SESSION_OPEN: 1,
  /** A client session closed (payload: session id, close reason). */
  SESSION_CLOSE: 2,
  /** A message from a client session to a service. */
  SESSION_MESSAGE: 3,
  /** A cluster timer expired (payload: correlation id). */
  TIMER_EVENT: 4,
  /** An actor-to-actor (service) message, replicated before anyone applies it. */
  SERVICE_MESSAGE: 5,
  /** A cluster action: snapshot, suspend, resume, shutdown. */
  CLUSTER_ACTION: 6,
  /** A leader's first entry in its term. */
  NEW_LEADERSHIP_TERM: 7,
  /** A membership change (one member added or removed). */
  MEMBERSHIP_CHANGE: 8,
} as const;

export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

export const entryKindName = (kind: number): string =>
  Object.entries(EntryKind).find(([, code]) => code === kind)?.[0] ?? `UNKNOWN(${kind})`;

export interface LogEntry {
  /** 1-based position in the log; index 0 is the empty log. */
  readonly index: number;
  /** The leadership term the entry was appended in. */
  readonly term: number;
  /** Cluster time in milliseconds: the leader's clock when it appended the entry. */
  readonly timestamp: number;
  readonly kind: EntryKind;
  /** msgpack-encoded body; its shape depends on `kind`. */
  readonly payload: Uint8Array;
}
