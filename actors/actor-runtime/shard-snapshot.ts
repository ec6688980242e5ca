// A shard's state as bytes and lists others read: the snapshot (actors with their pending timers and
// effects, and the de-duplication tables) in a canonical order, its decoding, and the pending effects and
// timers a new leader or a rebuilt timer service needs.

import type { EventObject } from 'xstate';
import type { DedupSnapshotRow } from '../sessions/command-dedup.ts';
import type { ActorRecord } from './actor-transaction.ts';
import { effectId, pack, timerEventPayload, timerId, unpack } from './protocol.ts';
import type { ActorType } from './service.ts';
import type { SessionReply } from './shard-input.ts';

export const SHARD_SNAPSHOT_VERSION = 2;

const NONE: readonly never[] = Object.freeze([]);

/**
 * Everything a shard knows, as msgpack bytes in a canonical order (actors by creating entry index, timers
 * and effects by seq, dedup tables by key): two shards with the same state give identical bytes. `records`
 * must iterate in creating-index order — actors are created in log order and a restore inserts them in
 * that order — so no sort of a million addresses is needed here.
 */
export const encodeShardSnapshot = (
  index: number,
  records: ReadonlyMap<string, ActorRecord>,
  sessions: readonly DedupSnapshotRow<SessionReply>[],
  senders: ReadonlyMap<string, number>,
): Uint8Array => {
  const actors: unknown[] = new Array(records.size);
  let at = 0;
  for (const record of records.values()) {
    const state = record.actor
      ? pack(record.actor.getPersistedSnapshot())
      : record.behaviour
        ? pack(record.behaviour.snapshot())
        : record.passivated!;
    const timers = record.timers
      ? [...record.timers.values()]
          .sort((a, b) => a.seq - b.seq)
          .map((t) => [t.seq, t.xstateId, t.deadline, t.event])
      : NONE;
    const effects = record.effects ? [...record.effects].sort((a, b) => a[0] - b[0]) : NONE;
    actors[at++] = [record.address, state, record.nextSeq, timers, effects, record.createdAt];
  }
  const senderRows = [...senders].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return pack([SHARD_SNAPSHOT_VERSION, index, actors, sessions, senderRows]);
};

export interface DecodedShardSnapshot {
  /** The log position the parts were taken at (-1 for no parts). */
  readonly index: number;
  /** Every kept actor, passivated, in creating-index order. */
  readonly records: ActorRecord[];
  /** The parts' session tables, to merge. */
  readonly sessions: DedupSnapshotRow<SessionReply>[][];
  /** Highest applied seq per sender, merged across parts. */
  readonly senders: Map<string, number>;
}

/**
 * Decode one or more shard snapshots taken at the same position. `keep` selects the actors wanted (a
 * snapshot set split across a different shard count); `typeOf` resolves an address to its actor type, or
 * says why it cannot (the restore then fails, naming the actor).
 */
export const decodeShardSnapshot = (
  parts: readonly Uint8Array[],
  typeOf: (address: string) => ActorType | string,
  keep?: (address: string) => boolean,
): DecodedShardSnapshot => {
  const records: ActorRecord[] = [];
  const sessions: DedupSnapshotRow<SessionReply>[][] = [];
  const senders = new Map<string, number>();
  let index = -1;
  for (const part of parts) {
    const decoded = unpack(part) as [number, number, unknown[][], unknown[][], [string, number][]];
    if (!Array.isArray(decoded) || decoded[0] !== SHARD_SNAPSHOT_VERSION) {
      throw new Error(
        `Shard.restore: snapshot version ${Array.isArray(decoded) ? decoded[0] : '?'} is not supported (this build reads ${SHARD_SNAPSHOT_VERSION})`,
      );
    }
    const [, at, actors, partSessions, partSenders] = decoded;
    if (index !== -1 && at !== index) {
      throw new Error(
        `Shard.restore: snapshot parts were taken at different log positions (${index} and ${at})`,
      );
    }
    index = at;
    for (const [address, state, nextSeq, timers, effects, createdAt] of actors as [
      string,
      Uint8Array,
      number,
      unknown[][],
      [number, unknown][],
      number,
    ][]) {
      if (keep && !keep(address)) continue;
      const type = typeOf(address);
      if (typeof type === 'string') throw new Error(`Shard.restore: actor ${address}: ${type}`);
      const record: ActorRecord = {
        address,
        type,
        actor: null,
        behaviour: null,
        passivated: state,
        nextSeq,
        timers: null,
        effects: null,
        lastUsed: 0,
        createdAt,
      };
      if (timers.length > 0) {
        record.timers = new Map();
        for (const [seq, xstateId, deadline, event] of timers as [number, string, number, EventObject][]) {
          record.timers.set(xstateId, { seq, xstateId, deadline, event });
        }
      }
      if (effects.length > 0) record.effects = new Map(effects);
      records.push(record);
    }
    sessions.push(partSessions as DedupSnapshotRow<SessionReply>[]);
    // A sender seen by any part keeps its highest number.
    for (const [from, seq] of partSenders) senders.set(from, Math.max(seq, senders.get(from) ?? 0));
  }
  // Creating-index order, whichever parts the records came from (see encodeShardSnapshot).
  if (parts.length > 1) records.sort((a, b) => a.createdAt - b.createdAt);
  return { index, records, sessions, senders };
};

/** External effects decided but not yet completed, in address then seq order. */
export const pendingEffectsOf = (
  records: ReadonlyMap<string, ActorRecord>,
): { effectId: string; address: string; seq: number; intent: unknown }[] => {
  const pending: { effectId: string; address: string; seq: number; intent: unknown }[] = [];
  for (const address of [...records.keys()].sort()) {
    const effects = records.get(address)!.effects;
    if (!effects) continue;
    for (const [seq, intent] of [...effects].sort((a, b) => a[0] - b[0])) {
      pending.push({ effectId: effectId(address, seq), address, seq, intent });
    }
  }
  return pending;
};

/** Pending cluster timers, in address then seq order. */
export const pendingTimersOf = (
  records: ReadonlyMap<string, ActorRecord>,
): { timerId: string; deadline: number; payload: Uint8Array }[] => {
  const pending: { timerId: string; deadline: number; payload: Uint8Array }[] = [];
  for (const address of [...records.keys()].sort()) {
    const timers = records.get(address)!.timers;
    if (!timers) continue;
    for (const timer of [...timers.values()].sort((a, b) => a.seq - b.seq)) {
      pending.push({
        timerId: timerId(address, timer.seq),
        deadline: timer.deadline,
        payload: timerEventPayload(address, timer.seq),
      });
    }
  }
  return pending;
};
