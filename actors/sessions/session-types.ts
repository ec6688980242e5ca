// The session manager's vocabulary: its inputs, its effects, what it tells clients, its options and its
// replicated state (the committed session table, as snapshotted). Kept apart from the manager so the
// runtime, the client library and the specs can name them without the manager's workings.

import type { CloseReasonName, LeaderView, ProtocolVersion } from '../../machines/client-session.ts';
import type { EntryKind, LogEntry } from '../log/log-entry.ts';
import type { Authenticator, NonceSource } from './authenticators.ts';

/**
 * A session event sent to a client (Aeron's EventCode, plus the challenge and close notices). OK for a
 * new session carries its resume token (the only time the token leaves the leader); NO_LEADER says this
 * member knows of no leader; RESUME_REFUSED that the session asked for cannot be resumed; KEEPALIVE
 * answers the client's, so a client awaiting replies can tell a live member from a frozen one.
 */
export type SessionEventToClient =
  | {
      readonly code: 'OK';
      readonly sessionId: number;
      readonly leaderId: number;
      readonly resumeToken?: Uint8Array;
    }
  | { readonly code: 'ERROR'; readonly detail: string; readonly retryable: boolean }
  | { readonly code: 'REDIRECT'; readonly leaderId: number; readonly endpoint: string }
  | { readonly code: 'NO_LEADER'; readonly detail: string }
  | { readonly code: 'RESUME_REFUSED'; readonly sessionId: number; readonly detail: string }
  | { readonly code: 'KEEPALIVE'; readonly sessionId: number }
  | { readonly code: 'AUTHENTICATION_REJECTED'; readonly detail: string }
  | { readonly code: 'CHALLENGE'; readonly challenge: Uint8Array }
  | { readonly code: 'CLOSED'; readonly sessionId: number; readonly reason: CloseReasonName };

export type SessionEffect =
  | { readonly type: 'SEND'; readonly connectionId: number; readonly event: SessionEventToClient }
  /**
   * Append an entry to the log (only ever produced on the leader). For SESSION_OPEN, `connectionId`
   * is set and the host must answer with an `OPEN_APPENDED` input carrying the entry's index.
   */
  | {
      readonly type: 'APPEND';
      readonly kind: EntryKind;
      readonly payload: Uint8Array;
      readonly connectionId?: number;
      /** For SESSION_CLOSE: the session; if the node refuses the entry the host answers `CLOSE_REFUSED`. */
      readonly sessionId?: number;
    }
  | { readonly type: 'CLOSE_CONNECTION'; readonly connectionId: number; readonly reason: string }
  /**
   * A client's message for the services, from an open session (leader only): the host hands it to the
   * consensus module, which appends it as a SESSION_MESSAGE entry (actors/log/session-message.ts).
   */
  | {
      readonly type: 'FORWARD';
      readonly sessionId: number;
      readonly correlationId: number;
      readonly lowestAwaited: number;
      readonly body: Uint8Array;
    };

export type SessionInput =
  | { readonly type: 'CONNECTION_OPENED'; readonly now: number; readonly connectionId: number }
  | { readonly type: 'CONNECTION_CLOSED'; readonly now: number; readonly connectionId: number }
  | {
      readonly type: 'CONNECT';
      readonly now: number;
      readonly connectionId: number;
      readonly credentials: Uint8Array;
      readonly protocolVersion: ProtocolVersion;
      /** A client back after a failover takes over its open session (C1) instead of opening one. */
      readonly resumeSessionId?: number | null;
      /** The session's resume token, issued in its OK: the proof that the client owns it. */
      readonly resumeToken?: Uint8Array | null;
      /**
       * Close the session (DISCONNECTED) once the connection this CONNECT opened or resumed it on has been
       * closed this long with no resume. Asked anew on every connect; checked at the edge (requests.ts).
       */
      readonly closeOnDisconnectMs?: number;
    }
  | {
      readonly type: 'CHALLENGE_RESPONSE';
      readonly now: number;
      readonly connectionId: number;
      readonly response: Uint8Array;
    }
  | {
      readonly type: 'KEEPALIVE';
      readonly now: number;
      readonly connectionId: number;
      readonly sessionId: number;
    }
  | {
      readonly type: 'SESSION_MESSAGE';
      readonly now: number;
      readonly connectionId: number;
      readonly sessionId: number;
      readonly correlationId: number;
      /** The lowest correlation id the client still awaits (see command-dedup.ts). */
      readonly lowestAwaited: number;
      readonly body: Uint8Array;
    }
  | {
      readonly type: 'CLOSE';
      readonly now: number;
      readonly connectionId: number;
      readonly sessionId: number;
    }
  /** A service closes a session (leader only: services on followers do the same, silently). */
  | { readonly type: 'CLOSE_SESSION'; readonly now: number; readonly sessionId: number }
  | { readonly type: 'TICK'; readonly now: number }
  | { readonly type: 'ROLE_CHANGED'; readonly now: number; readonly leader: LeaderView }
  /** The host's answer to an APPEND of SESSION_OPEN: the log index the entry was given. */
  /** The leader could not append a session's SESSION_CLOSE (the node refused the proposal): ask again later. */
  | { readonly type: 'CLOSE_REFUSED'; readonly now: number; readonly sessionId: number }
  | {
      readonly type: 'OPEN_APPENDED';
      readonly now: number;
      readonly connectionId: number;
      readonly index: number;
    }
  /** A committed entry; entries of kinds other than SESSION_OPEN / SESSION_CLOSE are ignored. */
  | { readonly type: 'COMMITTED'; readonly now: number; readonly entry: LogEntry };

export interface SessionManagerOptions {
  /** This member's id, sent in OK and recorded in SESSION_OPEN entries. */
  readonly memberId: number;
  /** Sessions open or opening at once on the leader (R2). */
  readonly maxSessions: number;
  /** Idle time after which a session is closed with TIMEOUT (C5). */
  readonly sessionTimeoutMs: number;
  readonly authenticator: Authenticator;
  /** Time a connect may spend authenticating. Default: `sessionTimeoutMs`. */
  readonly authenticationTimeoutMs?: number;
  /** Client connections held at once, with or without a session (R2). Default: 2 × maxSessions. */
  readonly maxConnections?: number;
  /** The session protocol this member speaks. Default: SESSION_PROTOCOL_VERSION. */
  readonly protocolVersion?: ProtocolVersion;
  /** Where resume tokens come from (leader only): unpredictable bytes, the OS's CSPRNG on a member. */
  readonly resumeTokens: NonceSource;
}

/** 2: records carry the resume token's hash. Version 1 is still read (its sessions cannot be resumed). */
export const SESSION_SNAPSHOT_VERSION = 2;

/** One committed session, as stored in a snapshot (plain, msgpack-able data). */
export interface SessionRecord {
  readonly id: number;
  readonly principal: string;
  readonly clientVersion: readonly [number, number];
  /** Cluster time (the SESSION_OPEN entry's timestamp). */
  readonly openedAt: number;
  readonly openedBy: number;
  /** SHA-256 of the session's resume token (from its SESSION_OPEN entry); null: not resumable. */
  readonly resumeTokenHash: Uint8Array | null;
}

export interface SessionManagerSnapshot {
  readonly version: number;
  /** Sorted by id. */
  readonly sessions: readonly SessionRecord[];
}

/** What the inspector and the cluster tool show about a session. */
export interface SessionView extends SessionRecord {
  readonly state: string;
  readonly connectionId: number | null;
}
