// What a member runs its service through: committed entries in, replies out, snapshot and restore.
// The built-in KV service is hosted here directly on the main thread; the actor runtime (worker-thread
// shards) implements the same interface.

import { pack } from 'msgpackr';
import type { CommandAdmission, ServiceReply } from '../actors/consensus/module-types.ts';
import type { EntryKind, LogEntry } from '../actors/log/log-entry.ts';
import {
  decodeKvCommand,
  type KvOutcome,
  type KvReply,
  type KvResult,
  KvService,
} from '../actors/services/kv.ts';

/** An entry a service asks the leader to append (a timer expiry, an actor-to-actor message, an effect's result). */
export interface ProposedEntry {
  readonly kind: EntryKind;
  readonly payload: Uint8Array;
}

/** What a member gives its service for one leadership (from LEADER_READY until it stops leading). */
export interface LeaderContext {
  /** Append entries through the consensus module, in order; how many were taken (the rest were refused:
   *  no longer the ready leader, suspended or transferring). */
  propose(entries: readonly ProposedEntry[]): number;
  /** True while this leadership lasts. */
  readonly active: boolean;
}

/** Why a body is too large for the log, or null. */
export const oversize = (body: Uint8Array, maxBytes: number): string | null =>
  body.length > maxBytes
    ? `the command is ${body.length} bytes, more than the ${maxBytes} one log entry may carry (maxFrameBytes sets it)`
    : null;

export interface ApplyOptions {
  /** Whether the caller will send the replies (default true). */
  readonly replies?: boolean;
}

export interface ServiceHost {
  /** A name for logs and the cluster tool. */
  readonly name: string;
  /**
   * The service edge, on the leader before a command enters the log: check a client's body (at most
   * `maxBytes`, well-formed, valid for the service) and give the body to append, or the refusal reply.
   * Deterministic; nothing refused here reaches the log.
   */
  admit(body: Uint8Array, maxBytes: number): CommandAdmission;
  /** Apply committed entries, in log order, exactly once each; the replies to client sessions. With
   *  `replies: false` (a follower: only the leader answers clients) a service may skip building replies. */
  apply(entries: readonly LogEntry[], options?: ApplyOptions): ServiceReply[] | Promise<ServiceReply[]>;
  /** The whole service state, for a snapshot at the last applied entry. */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replace the state with a snapshot's (null: the empty initial state). */
  restore(bytes: Uint8Array | null): void | Promise<void>;
  /** Release threads and other resources. */
  close?(): Promise<void>;
  /** This member became the ready leader; called in apply order (after every entry applied so far), never
   *  during replay. A service with its own pending work (timers, outbox, external effects) takes it over. */
  lead?(leader: LeaderContext): void | Promise<void>;
  /** Every member tick with the cluster time (ms): a leading service appends what is now due. */
  tick?(clusterTime: number): void;
}

// put and cas answer `{ ok }`: encoded once, shared by every reply (the transport copies payloads into
// frames, and nothing writes to them). Copied out of msgpackr's shared buffer.
const OK_TRUE = Buffer.from(pack({ ok: true }));
const OK_FALSE = Buffer.from(pack({ ok: false }));

const packResult = (result: KvResult): Uint8Array => {
  if ('ok' in result) return result.ok ? OK_TRUE : OK_FALSE;
  return pack(result);
};

/** A KV reply's payload: the result, or `{ refused: reason }` for a command that was not applied. */
const packOutcome = (outcome: KvOutcome): Uint8Array =>
  outcome.applied ? packResult(outcome.result) : pack(outcome.unknown ? {} : { refused: outcome.reason });

const refusedKv = (reason: string): CommandAdmission => ({ ok: false, payload: pack({ refused: reason }) });

/** The replicated KV/register service (get, put, compare-and-set) as a member's service. */
export class KvServiceHost implements ServiceHost {
  readonly name = 'kv';
  service = new KvService();

  admit(body: Uint8Array, maxBytes: number): CommandAdmission {
    const tooLarge = oversize(body, maxBytes);
    if (tooLarge) return refusedKv(tooLarge);
    try {
      decodeKvCommand(body);
    } catch (error) {
      return refusedKv((error as Error).message);
    }
    return { ok: true, body };
  }

  apply(entries: readonly LogEntry[], options?: ApplyOptions): ServiceReply[] {
    const replies: ServiceReply[] = [];
    const wanted = options?.replies ?? true;
    for (const entry of entries) {
      const reply: KvReply | null = this.service.apply(entry);
      if (reply && wanted) {
        replies.push({
          sessionId: reply.sessionId,
          correlationId: reply.correlationId,
          payload: packOutcome(reply.outcome),
          ...(!reply.outcome.applied && reply.outcome.unknown ? { outcomeUnknown: true } : {}),
        });
      }
    }
    return replies;
  }

  snapshot(): Uint8Array {
    return this.service.snapshot();
  }

  restore(bytes: Uint8Array | null): void {
    this.service = bytes ? KvService.restore(bytes) : new KvService();
  }
}
