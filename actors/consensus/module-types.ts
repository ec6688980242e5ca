// The consensus module's vocabulary: what a shell (a real member, or the simulator) feeds it and the one
// ordered effect stream it carries out. The module (consensus-module.ts) composes the consensus node
// (replication, election, roles), the session manager, back-pressure, the snapshot policy and the
// service-timer clock; the shell only executes.

import type { LogEntry } from '../log/log-entry.ts';
import type {
  SessionEventToClient,
  SessionInput,
  SessionManagerOptions,
  SessionManagerSnapshot,
} from '../sessions/session-types.ts';
import type { ConsensusConfig, ConsensusEffect, ConsensusInput, PersistedState } from './types.ts';

/** When each member snapshots itself (either bound, whichever comes first; null: never by it). */
export interface SnapshotPolicy {
  /** Entries applied since the last snapshot. */
  readonly everyEntries: number | null;
  /** Payload bytes applied since the last snapshot. */
  readonly everyBytes: number | null;
}

/** The service edge's verdict on a client command body (deterministic; run on the leader, before the log). */
export type CommandAdmission =
  | { readonly ok: true; readonly body: Uint8Array }
  /** Refused: `payload` is the reply the client gets; nothing reaches the log. */
  | { readonly ok: false; readonly payload: Uint8Array };

/** A reply the services produced for a client session (only the ready leader sends it). */
export interface ServiceReply {
  readonly sessionId: number;
  readonly correlationId: number;
  readonly payload: Uint8Array;
  /** A stale copy of a command the session no longer awaits: whether it was applied cannot be told (the
   *  client library surfaces it as OutcomeUnknownError, never as success or refusal). */
  readonly outcomeUnknown?: boolean;
  /** Not a reply: a message the service pushes to the session (correlationId 0), sent as CLIENT_NOTIFY. */
  readonly notify?: true;
}

export interface ConsensusModuleConfig {
  readonly consensus: ConsensusConfig;
  /** The session manager's options (memberId must equal consensus.memberId). */
  readonly sessions: SessionManagerOptions;
  /** Each member's client endpoint (`host:port`), for redirects. */
  readonly clientEndpoints: ReadonlyMap<number, string>;
  /** Back-pressure (R1, R5): past this many appended but unapplied entries, commands are answered BUSY. */
  readonly maxUnappliedEntries: number;
  readonly snapshotPolicy: SnapshotPolicy;
  /** The service's own checks of a command body (default: every body is admitted as it is). */
  readonly admit?: (body: Uint8Array) => CommandAdmission;
  /** What a BUSY tells the client to wait before resending (ms). Default 50. */
  readonly retryAfterMs?: number;
}

/** What a member starts from: its durable consensus state and the session table of its snapshot. */
export interface ModuleRecovery {
  readonly persisted: PersistedState;
  readonly sessions: SessionManagerSnapshot | null;
}

/** Node inputs the module passes through unchanged. */
type PassedInput = Exclude<ConsensusInput, { type: 'SNAPSHOT_TAKEN' | 'SERVICES_REPLAYED' }>;

export type ModuleInput =
  | PassedInput
  /** A client connection's event, checked at the edge (connection opened/closed, a parsed request). */
  | { readonly type: 'CLIENT'; readonly input: SessionInput }
  /**
   * The services have applied every entry up to `index` (an APPLY's last entry); `replies` are what they
   * produced for client sessions (empty when the APPLY said no replies were wanted).
   */
  | {
      readonly type: 'SERVICES_REPLAYED';
      readonly index: number;
      readonly replies?: readonly ServiceReply[];
    }
  /** The snapshot asked for with TAKE_SNAPSHOT is written (or dropped); `data` is its image data. */
  | {
      readonly type: 'SNAPSHOT_TAKEN';
      readonly index: number;
      readonly term: number;
      readonly data: Uint8Array;
    }
  /** A write failed because the storage cannot take it (disk full, I/O error): `reason` says why. */
  | { readonly type: 'STORAGE_FAILED'; readonly reason: string }
  /** The storage takes writes again (after STORAGE_FAILED). */
  | { readonly type: 'STORAGE_RECOVERED' };

/** Node effects the module passes through unchanged (to execute, or only to log). */
export type PassedEffect = Exclude<
  ConsensusEffect,
  { type: 'APPLY' } | { type: 'TAKE_SNAPSHOT' } | { type: 'REJECT' }
>;

/** Effects that write to the member's storage: in a batch, every one of them precedes the batch's sends. */
export const PERSIST_EFFECTS = new Set<ModuleEffect['type']>([
  'APPEND',
  'TRUNCATE',
  'PURGE',
  'SAVE_NODE_STATE',
  'INSTALL_SNAPSHOT',
]);

/** Effects that leave the process by the network (peers or clients): last in every batch. */
export const SEND_EFFECTS = new Set<ModuleEffect['type']>([
  'SEND',
  'CLIENT_EVENT',
  'CLIENT_REPLY',
  'CLIENT_BUSY',
  'CLIENT_NOTIFY',
  'CLOSE_CONNECTION',
]);

export type ModuleEffect =
  | PassedEffect
  /** Feed committed entries to the services; `replies`: whether their replies will be sent (ready leader). */
  | { readonly type: 'APPLY'; readonly entries: readonly LogEntry[]; readonly replies: boolean }
  /**
   * Snapshot the services at `index` (after every APPLY before this effect), record the set with the
   * module part given here, then answer SNAPSHOT_TAKEN with the image data.
   */
  | {
      readonly type: 'TAKE_SNAPSHOT';
      readonly index: number;
      readonly term: number;
      /** Cluster time of the entry at `index` (0 when the log no longer holds it). */
      readonly timestamp: number;
      /** The module part of the image (the committed session table at `index`). */
      readonly module: Uint8Array;
    }
  /** Tell a client connection a session event. */
  | { readonly type: 'CLIENT_EVENT'; readonly connectionId: number; readonly event: SessionEventToClient }
  /** A reply to a client's command (the service's, or the service edge's refusal). */
  | {
      readonly type: 'CLIENT_REPLY';
      readonly connectionId: number;
      readonly correlationId: number;
      readonly payload: Uint8Array;
      readonly outcomeUnknown?: true;
    }
  /** The command was not taken: the client resends it after `retryAfterMs`. */
  | {
      readonly type: 'CLIENT_BUSY';
      readonly connectionId: number;
      readonly correlationId: number;
      readonly retryAfterMs: number;
      readonly detail: string;
    }
  /** A message a service pushed to the client's session (actors/actor-runtime/service.ts `notify`). */
  | { readonly type: 'CLIENT_NOTIFY'; readonly connectionId: number; readonly payload: Uint8Array }
  | { readonly type: 'CLOSE_CONNECTION'; readonly connectionId: number; readonly reason: string }
  /** This member became the ready leader of `term`: hand the services the leadership (in apply order). */
  | { readonly type: 'LEAD_SERVICES'; readonly term: number }
  /** The leading services may append what is due at `clusterTime` (never earlier than the last entry's). */
  | { readonly type: 'SERVICE_TICK'; readonly clusterTime: number }
  /**
   * Storage failed: the module stopped taking part in the cluster (no heartbeats, acknowledgements or
   * votes), so a leader is replaced by the others; clients were told this member knows of no leader.
   */
  | { readonly type: 'STORAGE_FENCED'; readonly reason: string }
  /** Storage works again: rebuild the module from what the store holds (snapshot + log) and rejoin. */
  | { readonly type: 'REJOIN' };
