// The pure, in-process shard: a set of virtual actors that applies committed log entries in order and
// returns what they produce. No I/O, no wall time, no real timers: the same code runs inside a worker
// thread (runtime/actor-runtime) and in the simulator, and every member computes the same outputs.
//
// The shard decides what each committed entry means — a session's command (answered once per correlation
// id: C2), an actor-to-actor message (applied once per sender seq), a timer's expiry, an effect's
// completion, a snapshot request — and hands the event to its actor (actor-host.ts). Each input is a small
// transaction (actor-transaction.ts): timer changes, sends, effects and the reply are staged and kept only
// if the transition succeeds. The snapshot's bytes are in shard-snapshot.ts.

import type { EventObject } from 'xstate';
import { EntryKind, type LogEntry } from '../log/log-entry.ts';
import { CommandDedup } from '../sessions/command-dedup.ts';
import { ActorHost } from './actor-host.ts';
import {
  ClusterAction,
  EFFECT_DONE_FROM,
  formatAddress,
  replyOutput,
  type ShardOutput,
  shardOfAddress,
} from './protocol.ts';
import type { HostedService, SessionClosed } from './service.ts';
import {
  answerWithoutApplying,
  decodeEntry,
  malformedCommandReply,
  type SessionCommand,
  type SessionReply,
  wellFormed,
  withOrigin,
} from './shard-input.ts';
import {
  decodeShardSnapshot,
  encodeShardSnapshot,
  pendingEffectsOf,
  pendingTimersOf,
  SHARD_SNAPSHOT_VERSION,
} from './shard-snapshot.ts';

export { SHARD_SNAPSHOT_VERSION };

export interface ShardOptions {
  readonly services: readonly HostedService[];
  /** This shard's number (labels SNAPSHOT outputs; with shardCount, picks the actors a session close reaches here). */
  readonly shard?: number;
  /** How many shards share the actors (default 1): a session close's events go to the actors this shard owns. */
  readonly shardCount?: number;
  /** Most actors kept live; the least recently used beyond this are passivated. Default 10,000. */
  readonly maxLiveActors?: number;
}

export class Shard {
  readonly shard: number;
  readonly shardCount: number;
  readonly maxLiveActors: number;
  private readonly actors: ActorHost;
  /** The services that want session closes told, in registration order (the same on every member). */
  private readonly sessionClosers: [string, SessionClosed][] = [];
  private readonly sessions = new CommandDedup<SessionReply>();
  /** Highest applied actor-to-actor seq per sender (dedup of a new leader's resends). */
  private readonly senders = new Map<string, number>();
  private applied = 0;

  constructor(options: ShardOptions) {
    this.shard = options.shard ?? 0;
    this.shardCount = options.shardCount ?? 1;
    this.maxLiveActors = options.maxLiveActors ?? 10_000;
    if (!(Number.isInteger(this.maxLiveActors) && this.maxLiveActors >= 1)) {
      throw new RangeError(`Shard: maxLiveActors must be an integer >= 1, got ${options.maxLiveActors}`);
    }
    const services = new Map<string, HostedService>();
    for (const service of options.services) {
      if (services.has(service.name)) {
        throw new TypeError(
          `Shard: service '${service.name}' registered twice; give each service a unique name`,
        );
      }
      services.set(service.name, service);
      if (service.sessionClosed) this.sessionClosers.push([service.name, service.sessionClosed]);
    }
    this.actors = new ActorHost(services, this.maxLiveActors);
  }

  /** Index of the last entry applied (entries at or below it are skipped: replay is idempotent). */
  get lastApplied(): number {
    return this.applied;
  }

  get actorCount(): number {
    return this.actors.records.size;
  }

  get liveActorCount(): number {
    return this.actors.liveCount;
  }

  /** Apply committed entries in log order; returns their outputs in the same order. */
  apply(entries: readonly LogEntry[], outputs: ShardOutput[] = []): ShardOutput[] {
    for (const entry of entries) {
      if (entry.index <= this.applied) continue;
      const body = decodeEntry(entry);
      if (wellFormed(entry.kind, body)) this.applyOne(entry, body, outputs);
      else {
        const refused = malformedCommandReply(entry);
        if (refused) outputs.push(refused);
      }
      // Other malformed entries are skipped the same way on every member (they never change state); the
      // edge validates input, so this only guards against a bug or a hostile peer.
      this.applied = entry.index;
    }
    return outputs;
  }

  private applyOne(entry: LogEntry, body: unknown, outputs: ShardOutput[]): void {
    switch (entry.kind) {
      case EntryKind.SESSION_MESSAGE: {
        const [address, sessionId, correlationId, event, lowestAwaited] = body as SessionCommand;
        const verdict = this.sessions.check(sessionId, correlationId, lowestAwaited);
        if (verdict.kind !== 'NEW') {
          // C2: a resend is answered with the original reply; never applied twice, never dropped.
          outputs.push(answerWithoutApplying(entry.index, sessionId, correlationId, verdict));
          return;
        }
        const error = this.actors.deliver(
          entry,
          address,
          withOrigin(event, { session: sessionId }),
          outputs,
          true,
          sessionId,
        );
        const value = error === null ? this.actors.replyValue : undefined;
        this.actors.replyValue = undefined;
        this.sessions.record(sessionId, correlationId, [error === null, value, error]);
        outputs.push(
          replyOutput(
            entry.index,
            sessionId,
            correlationId,
            error === null,
            value,
            error ?? undefined,
            false,
          ),
        );
        return;
      }
      case EntryKind.SERVICE_MESSAGE: {
        const [address, from, seq, message] = body as [string, string, number, unknown];
        if (from === EFFECT_DONE_FROM) {
          this.actors.completeEffect(entry, address, seq, message, outputs);
          return;
        }
        const highest = this.senders.get(from);
        if (highest !== undefined && seq <= highest) return; // a resend of a message already applied
        this.senders.set(from, seq);
        this.actors.deliver(entry, address, withOrigin(message as EventObject, { actor: from }), outputs);
        return;
      }
      case EntryKind.TIMER_EVENT: {
        const [address, seq] = body as [string, number];
        this.actors.fireTimer(entry, address, seq, outputs);
        return;
      }
      case EntryKind.CLUSTER_ACTION: {
        const [action] = body as [string];
        if (action === ClusterAction.SNAPSHOT) {
          outputs.push({
            type: 'SNAPSHOT',
            index: entry.index,
            shard: this.shard,
            bytes: this.snapshot(entry.index),
          });
        }
        return;
      }
      case EntryKind.SESSION_CLOSE: {
        const sessionId = Array.isArray(body) ? body[0] : (body as { sessionId?: unknown } | null)?.sessionId;
        if (typeof sessionId !== 'number') return;
        this.sessions.close(sessionId);
        this.tellSessionClosed(entry, sessionId, outputs);
        return;
      }
      default:
        return;
    }
  }

  /**
   * A session closed: each service's `sessionClosed` events, in its order, to the actors this shard owns
   * (every shard sees the entry; each actor is on exactly one). A route that names no actor of the service,
   * or a `sessionClosed` that throws, delivers nothing — the same on every member.
   */
  private tellSessionClosed(entry: LogEntry, sessionId: number, outputs: ShardOutput[]): void {
    for (const [service, sessionClosed] of this.sessionClosers) {
      let routes: ReturnType<SessionClosed>;
      try {
        routes = sessionClosed(sessionId);
      } catch {
        continue;
      }
      if (!Array.isArray(routes)) continue;
      for (const route of routes) {
        let address: string;
        try {
          address = formatAddress(service, route.actorType, route.actorId);
        } catch {
          continue;
        }
        if (shardOfAddress(address, this.shardCount) !== this.shard) continue;
        const event = { ...route.event, origin: { sessionClosed: sessionId } };
        this.actors.deliver(entry, address, event, outputs);
      }
    }
  }

  /** External effects decided but not yet completed, in address then seq order: a new leader performs
   *  them again (their completion is applied once: later completions are ignored). */
  pendingEffects(): { effectId: string; address: string; seq: number; intent: unknown }[] {
    return pendingEffectsOf(this.actors.records);
  }

  /** Pending cluster timers (for rebuilding the timer service after a restart), address then seq order. */
  pendingTimers(): { timerId: string; deadline: number; payload: Uint8Array }[] {
    return pendingTimersOf(this.actors.records);
  }

  /** The persisted XState snapshot of one actor (live or passivated), or undefined if it does not exist. */
  actorState(address: string): unknown {
    return this.actors.actorState(address);
  }

  /** Everything this shard knows, as msgpack bytes in a canonical order (see encodeShardSnapshot). */
  snapshot(index: number = this.applied): Uint8Array {
    return encodeShardSnapshot(index, this.actors.records, this.sessions.snapshot(), this.senders);
  }

  /**
   * A shard rebuilt from snapshot bytes (every actor passivated, rehydrated on its next input). `keep`
   * selects the actors this shard owns, so a snapshot set can be split across a different shard count.
   */
  static restore(
    bytes: Uint8Array | readonly Uint8Array[],
    options: ShardOptions,
    keep?: (address: string) => boolean,
  ): Shard {
    const shard = new Shard(options);
    const parts = bytes instanceof Uint8Array ? [bytes] : bytes;
    const decoded = decodeShardSnapshot(parts, (address) => shard.actors.actorTypeOf(address), keep);
    shard.actors.adopt(decoded.records);
    // Dedup tables are merged: a session seen by any part keeps its highest floor.
    for (const sessions of decoded.sessions) shard.sessions.restore(sessions);
    for (const [from, seq] of decoded.senders) shard.senders.set(from, seq);
    shard.applied = Math.max(decoded.index, 0);
    return shard;
  }
}
