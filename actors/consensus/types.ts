// The consensus core's vocabulary: options, peer messages, inputs and effects. The core
// (ConsensusNode) performs no I/O: a shell (a real member, or the simulator) feeds it inputs and
// carries out the effects it returns, in order. Peer messages are plain objects of numbers, arrays and
// Uint8Arrays so the lead's msgpack codec can put them on the wire as they are.

import type { RandomState } from '../../machines/random.ts';
import type { EntryKind, LogEntry } from '../log/log-entry.ts';

/** Timeouts, in milliseconds of the member's monotonic clock (never from log timestamps: O5). */
export interface ConsensusTimeouts {
  /** Ballot timeout, and the non-startup canvass deadline is half of it. */
  readonly electionTimeoutMs: number;
  /** How often a leader sends a heartbeat (an empty append) to each follower. */
  readonly heartbeatIntervalMs: number;
  /** A follower that hears no leader this long starts an election; a leader that hears from no quorum this long steps down. */
  readonly heartbeatTimeoutMs: number;
  /** The canvass deadline of the first election after start-up (members may still be starting). */
  readonly startupCanvassTimeoutMs: number;
  /** How often a member in an election re-sends its canvass position. */
  readonly electionStatusIntervalMs: number;
}

/** Defaults for a LAN failover of about one second. */
export const DEFAULT_TIMEOUTS: ConsensusTimeouts = Object.freeze({
  electionTimeoutMs: 400,
  heartbeatIntervalMs: 50,
  heartbeatTimeoutMs: 500,
  startupCanvassTimeoutMs: 600,
  electionStatusIntervalMs: 50,
});

/** Test-only switches that break one safety rule each, so tests can show the simulator catches it. */
export interface FaultyRules {
  /** The leader commits what it flushed itself, without waiting for a quorum. */
  readonly commitWithoutQuorum?: true;
  /** A vote (and a new term) is sent before the node state is durable. */
  readonly voteBeforeDurable?: true;
  /** The leader never gives up leadership: no check-quorum, ignores newer terms. */
  readonly leaderNeverStepsDown?: true;
}

export interface ConsensusConfig {
  /** This member's id. */
  readonly memberId: number;
  /** Every voting member's id, this one included (3 or 5 usually). */
  readonly members: readonly number[];
  readonly timeouts?: Partial<ConsensusTimeouts>;
  /** Seed (or generator state) of the nomination delay: the simulator passes one per member. */
  readonly randomSeed: number | RandomState;
  /** Flow control: at most this many payload bytes sent and not yet acknowledged per follower. */
  readonly maxBytesInFlight?: number;
  /** At most this many payload bytes in one append message. */
  readonly maxBatchBytes?: number;
  readonly faultyRules?: FaultyRules;
  /**
   * The replay phases of an election (LEADER_REPLAY, FOLLOWER_REPLAY) wait for SERVICES_REPLAYED from the
   * shell. Off (the default), an APPLY handed to the shell counts as replayed, for shells that do not
   * send SERVICES_REPLAYED yet.
   */
  readonly awaitServicesReplay?: boolean;
}

/** A snapshot of the services and the module at a committed log position. */
export interface SnapshotImage {
  readonly index: number;
  readonly term: number;
  /** The encoded services' state (opaque to the core). */
  readonly data: Uint8Array;
}

/** The durable state a member starts from (what the store and snapshot store hold). */
export interface PersistedState {
  readonly currentTerm: number;
  readonly candidateTermId: number;
  readonly votedFor: number | null;
  /** The latest snapshot, or null. */
  readonly snapshot: SnapshotImage | null;
  /** The log after the snapshot, in order (entry.index = snapshot index + 1, + 2, ...). */
  readonly entries: readonly LogEntry[];
}

export const EMPTY_PERSISTED_STATE: PersistedState = Object.freeze({
  currentTerm: 0,
  candidateTermId: 0,
  votedFor: null,
  snapshot: null,
  entries: [],
});

// ------------------------------------------------------------------------------------------------
// Peer messages
// ------------------------------------------------------------------------------------------------

/** Pre-vote: a member in an election tells its log position; `reply` marks an answer (not re-answered). */
export interface CanvassPosition {
  readonly type: 'CANVASS_POSITION';
  readonly logTerm: number;
  readonly logIndex: number;
  readonly term: number;
  readonly reply: boolean;
  /** The canvass it belongs to: the sender's own round in a broadcast, the round answered in a reply. */
  readonly round: number;
}

export interface RequestVote {
  readonly type: 'REQUEST_VOTE';
  readonly term: number;
  readonly logTerm: number;
  readonly logIndex: number;
  /** True when a leader asked this candidate to take over: voters with a live leader still answer. */
  readonly transfer: boolean;
}

export interface Vote {
  readonly type: 'VOTE';
  readonly term: number;
  readonly granted: boolean;
}

/** Entries (or a heartbeat when empty) from the leader; `leaderLastIndex` lets followers see how far behind they are. */
export interface AppendEntries {
  readonly type: 'APPEND';
  readonly term: number;
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly LogEntry[];
  readonly commitIndex: number;
  readonly leaderLastIndex: number;
}

/** A follower's answer: on success `matchIndex` is flushed and known to match the leader; on failure a hint. */
export interface AppendResponse {
  readonly type: 'APPEND_RESPONSE';
  readonly term: number;
  readonly success: boolean;
  readonly matchIndex: number;
  /** On failure: the prevIndex that was rejected, and where the follower's log may agree (index, term). */
  readonly rejectedIndex: number;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

export interface InstallSnapshot {
  readonly type: 'INSTALL_SNAPSHOT';
  readonly term: number;
  readonly index: number;
  readonly snapshotTerm: number;
  readonly data: Uint8Array;
}

/** Leadership transfer: the leader tells an up-to-date follower to ballot at once. */
export interface TimeoutNow {
  readonly type: 'TIMEOUT_NOW';
  readonly term: number;
}

export type PeerMessage =
  | CanvassPosition
  | RequestVote
  | Vote
  | AppendEntries
  | AppendResponse
  | InstallSnapshot
  | TimeoutNow;

// ------------------------------------------------------------------------------------------------
// Inputs
// ------------------------------------------------------------------------------------------------

export type ConsensusInput =
  /** The monotonic clock advanced (ms). Timeouts are measured only from these. */
  /**
   * The clock advanced. `now` is monotonic ms and drives every timeout; `clusterTime` (optional) is the
   * member's wall clock, used only to timestamp new entries (cluster time), never for timeouts.
   */
  | { readonly type: 'TICK'; readonly now: number; readonly clusterTime?: number }
  | { readonly type: 'PEER_MESSAGE'; readonly from: number; readonly message: PeerMessage }
  /**
   * The transport lost its connection to a peer (the process died or closed it). If that peer leads,
   * a follower starts an election at once instead of waiting out the heartbeat timeout. Safe whatever
   * the cause: the canvass (pre-vote) cannot unseat a leader the other members still hear (P4).
   */
  | { readonly type: 'PEER_DISCONNECTED'; readonly peer: number }
  /** A client's command (payload encoded for the service). */
  | {
      readonly type: 'CLIENT_COMMAND';
      readonly sessionId: number;
      readonly correlationId: number;
      /** The lowest correlation id the client still awaits (see actors/sessions/command-dedup.ts). */
      readonly lowestAwaited: number;
      readonly payload: Uint8Array;
    }
  /**
   * Leader: append an entry of any kind verbatim (session open/close, timer event, cluster action...).
   * Answered with PROPOSED (its index) or PROPOSAL_REJECTED.
   */
  | { readonly type: 'PROPOSE'; readonly kind: EntryKind; readonly payload: Uint8Array }
  /** The store flushed every APPEND up to and including the one with this `seq`. */
  | { readonly type: 'APPENDED'; readonly seq: number }
  /** The node state of SAVE_NODE_STATE `seq` (and all before it) is durable. */
  | { readonly type: 'NODE_STATE_SAVED'; readonly seq: number }
  /** The shell wrote a snapshot (asked for with TAKE_SNAPSHOT) durably. */
  | { readonly type: 'SNAPSHOT_TAKEN'; readonly snapshot: SnapshotImage }
  /** The snapshot of INSTALL_SNAPSHOT is durable and the services were reset to it. */
  | { readonly type: 'SNAPSHOT_INSTALLED'; readonly index: number }
  /** The services have applied every entry up to `index`: the last entry of an APPLY, sent once they applied it. */
  | { readonly type: 'SERVICES_REPLAYED'; readonly index: number }
  /** Operator: take a snapshot at the applied position. */
  | { readonly type: 'REQUEST_SNAPSHOT' }
  /** Operator: hand leadership to `to` (leader only). */
  | { readonly type: 'TRANSFER_LEADERSHIP'; readonly to: number }
  | { readonly type: 'SUSPEND' }
  | { readonly type: 'RESUME' }
  | { readonly type: 'SHUTDOWN' };

// ------------------------------------------------------------------------------------------------
// Effects
// ------------------------------------------------------------------------------------------------

export type RejectReason = 'NOT_LEADER' | 'SUSPENDED' | 'TRANSFERRING' | 'CLOSED';

export type ConsensusEffect =
  /** Send a message to a peer (best effort; the protocol tolerates loss, duplication, reordering). */
  | { readonly type: 'SEND'; readonly to: number; readonly message: PeerMessage }
  /** Persist entries at the end of the log; durable only when APPENDED with this seq comes back. */
  | { readonly type: 'APPEND'; readonly seq: number; readonly entries: readonly LogEntry[] }
  /** Remove the log from `index` on (a conflicting, uncommitted tail). Ordered before later APPENDs. */
  | { readonly type: 'TRUNCATE'; readonly fromIndex: number }
  /** Drop the log up to and including `index` (covered by a durable snapshot). */
  | { readonly type: 'PURGE'; readonly toIndex: number }
  /** Persist term and vote; nothing that depends on them is sent before NODE_STATE_SAVED seq. */
  | {
      readonly type: 'SAVE_NODE_STATE';
      readonly seq: number;
      readonly currentTerm: number;
      readonly candidateTermId: number;
      readonly votedFor: number | null;
    }
  /** The commit position advanced. */
  | { readonly type: 'COMMIT'; readonly commitIndex: number }
  /** Committed entries, in order, to feed the services (every member applies them). */
  | { readonly type: 'APPLY'; readonly entries: readonly LogEntry[] }
  /** Tell a client its command was not taken, and who the leader is if known. */
  | {
      readonly type: 'REJECT';
      readonly sessionId: number;
      readonly correlationId: number;
      readonly reason: RejectReason;
      readonly leaderId: number | null;
    }
  /** A PROPOSE was appended at `index` (it commits, or not, like any entry). */
  | { readonly type: 'PROPOSED'; readonly index: number; readonly term: number; readonly kind: EntryKind }
  /** A PROPOSE was refused (this member is not a ready leader, or is suspended, closing or transferring). */
  | {
      readonly type: 'PROPOSAL_REJECTED';
      readonly kind: EntryKind;
      readonly reason: RejectReason;
      readonly leaderId: number | null;
    }
  /** Write a snapshot of the services at `index` (the applied position), then send SNAPSHOT_TAKEN. */
  | { readonly type: 'TAKE_SNAPSHOT'; readonly index: number; readonly term: number }
  /** Replace the services' state and the log prefix with this snapshot, then send SNAPSHOT_INSTALLED. */
  | { readonly type: 'INSTALL_SNAPSHOT'; readonly snapshot: SnapshotImage }
  /** The role derived from the election changed; `event`: the chart event that changed it (the inspector's record). */
  | {
      readonly type: 'ROLE_CHANGE';
      readonly from: string;
      readonly to: string;
      readonly term: number;
      readonly event?: string;
    }
  /** The election chart moved; `event`: the chart event that moved it (the inspector's transition record). */
  | {
      readonly type: 'ELECTION_STATE_CHANGE';
      readonly from: string;
      readonly to: string;
      readonly term: number;
      readonly event?: string;
    }
  | {
      readonly type: 'MODULE_STATE_CHANGE';
      readonly from: string;
      readonly to: string;
      readonly event?: string;
    };
