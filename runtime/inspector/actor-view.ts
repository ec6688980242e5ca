// The inspector's actors: the list (services → shards → actors), one actor's statechart state, context,
// pending timers and last inputs, and the same as of an earlier log index — time travel, computed by replay
// in isolation: a fresh in-process ShardSet (the shard code the simulator and the workers run) restored from
// the newest snapshot set at or before that index and fed the log after it, read from the member's store.
// The live shards are only read (one actor's state; a snapshot for the list); nothing here writes to the
// member.
import { ActorHost } from '../../actors/actor-runtime/actor-host.ts';
import { parseAddress, shardOfAddress } from '../../actors/actor-runtime/protocol.ts';
import type { ActorType, HostedService } from '../../actors/actor-runtime/service.ts';
import { decodeEntry } from '../../actors/actor-runtime/shard-input.ts';
import { ShardSet, type ShardSetSnapshot } from '../../actors/actor-runtime/shard-set.ts';
import { decodeShardSnapshot } from '../../actors/actor-runtime/shard-snapshot.ts';
import { entryKindName, type LogEntry } from '../../actors/log/log-entry.ts';
import type { MemberStore } from '../../persistence/index.ts';
import { ActorServiceHost, decodeActorSnapshot } from '../actor-runtime/actor-service-host.ts';
import { SERVICE_SNAPSHOT_ID } from '../member-storage.ts';
import type { ServiceHost } from '../service-host.ts';
import { HttpError } from './http.ts';
import { machineIdOf } from './machines.ts';

/** Most actors one GET /actors lists (then `truncated`). */
export const MAX_LISTED_ACTORS = 500;
/** Last inputs shown for an actor, and how far back in the log they are looked for. */
const LAST_INPUTS = 10;
const INPUT_SCAN = 2000;
/** Entries replayed per step of a time travel, with a turn of the event loop between steps. */
const REPLAY_STEP = 500;

/** The actor side of a member: its services and its shards (none for the built-in KV service). */
export class ActorViews {
  /** Resolves addresses to actor types as the shards do (it hosts no actor). */
  private lookup: ActorHost | null = null;
  /** Time travels queue here: one replay at a time. */
  private replays: Promise<void> = Promise.resolve();

  constructor(
    private readonly service: ServiceHost,
    private readonly store: MemberStore,
  ) {}

  get services(): readonly HostedService[] {
    return this.service instanceof ActorServiceHost ? this.service.hostedServices : [];
  }

  /** Entries handed to the shards and not applied yet. */
  queueDepth(): number {
    return this.service instanceof ActorServiceHost ? this.service.pool.pendingEntries : 0;
  }

  /** GET /actors?q=TEXT */
  async list(q: string) {
    const snapshot = await this.liveSnapshot();
    const needle = q.toLowerCase();
    const byService = new Map<string, Map<number, string[]>>();
    for (const service of this.services) byService.set(service.name, new Map());
    let listed = 0;
    let truncated = false;
    snapshot?.shards.forEach((part, shard) => {
      for (const record of this.decode([part]).records) {
        if (needle !== '' && !record.address.toLowerCase().includes(needle)) continue;
        if (listed >= MAX_LISTED_ACTORS) {
          truncated = true;
          return;
        }
        const shards = byService.get(parseAddress(record.address).service);
        if (!shards) continue;
        const list = shards.get(shard) ?? [];
        list.push(record.address);
        shards.set(shard, list);
        listed++;
      }
    });
    const services = [...byService].map(([name, shards]) => ({
      name,
      shards: [...shards].sort(([a], [b]) => a - b).map(([id, actors]) => ({ id, actors })),
    }));
    return { services, truncated, limit: MAX_LISTED_ACTORS };
  }

  /** An actor's state and context as the live shards hold it now (the live push: one shard round trip). */
  async actorState(address: string): Promise<{ state: unknown; context: unknown } | null> {
    if (!(this.service instanceof ActorServiceHost) || typeof this.typeOf(address) === 'string') return null;
    const persisted = await this.service.pool.actorState(address);
    return persisted === undefined ? null : this.stateOf(address, persisted);
  }

  /** GET /actors/ADDRESS: as the live shards hold it now (after every entry handed to them). */
  async actor(address: string, commitIndex: number) {
    const type = this.checkAddress(address);
    if (!(this.service instanceof ActorServiceHost))
      throw new HttpError(404, 'this member hosts the built-in KV service, which has no actors');
    const { pool, timers } = this.service;
    const index = pool.lastApplied;
    const persisted = await pool.actorState(address);
    const pending = timers.list().map((t) => ({ timerId: t.timerId, deadline: t.deadline }));
    return this.view(address, type, persisted, pending, index, Math.min(commitIndex, index));
  }

  /** GET /actors/ADDRESS/at/INDEX: replayed in isolation from a snapshot set and the log. */
  async actorAt(address: string, index: number, commitIndex: number) {
    const type = this.checkAddress(address);
    if (!(this.service instanceof ActorServiceHost))
      throw new HttpError(404, 'this member hosts the built-in KV service, which has no actors');
    if (index > commitIndex)
      throw new HttpError(
        404,
        `index ${index} is beyond the committed log (commit position ${commitIndex}); pick an index up to it`,
      );
    // One replay at a time: each runs on this member's main thread, between its own work.
    const replay = this.replays.then(() => this.replayTo(index));
    this.replays = replay.then(
      () => {},
      () => {},
    );
    const shards = await replay;
    const shard = shards.shards[shardOfAddress(address, shards.shardCount)];
    return this.view(address, type, shard.actorState(address), shard.pendingTimers(), index, index);
  }

  private checkAddress(address: string): ActorType {
    const type = this.typeOf(address);
    if (typeof type === 'string') throw new HttpError(404, `no actor ${address}: ${type}`);
    return type;
  }

  private async liveSnapshot(): Promise<ShardSetSnapshot | null> {
    return this.service instanceof ActorServiceHost ? this.service.pool.snapshot() : null;
  }

  private stateOf(address: string, persisted: unknown): { state: unknown; context: unknown } {
    const type = this.typeOf(address);
    if (typeof type === 'string' || type.machine === null) return { state: null, context: persisted };
    const snapshot = persisted as { value?: unknown; context?: unknown } | null;
    return { state: snapshot?.value ?? null, context: snapshot?.context ?? null };
  }

  private view(
    address: string,
    type: ActorType,
    persisted: unknown,
    timers: readonly { timerId: string; deadline: number }[],
    index: number,
    inputsUpTo: number,
  ) {
    if (persisted === undefined)
      throw new HttpError(
        404,
        `no actor ${address} as of index ${index}: it has had no committed input yet (actors are created by their first)`,
      );
    const prefix = `${address}#`;
    return {
      address,
      index,
      machine: type.machine ? machineIdOf(this.services, type.machine) : null,
      kind: type.machine ? 'statechart' : 'behaviour',
      ...this.stateOf(address, persisted),
      timers: timers
        .filter((t) => t.timerId.startsWith(prefix))
        .map((t) => ({ id: t.timerId, dueAtMs: t.deadline })),
      lastInputs: this.lastInputs(address, inputsUpTo),
    };
  }

  /** The newest committed inputs addressed to `address` at or before `upTo` (looked for in a bounded tail). */
  private lastInputs(address: string, upTo: number) {
    const log = this.store.log;
    const to = Math.min(upTo, log.lastIndex);
    const from = Math.max(log.firstIndex, to - INPUT_SCAN + 1);
    if (to < from) return [];
    const inputs: { index: number; kind: string; timestamp: number; input: unknown }[] = [];
    const entries = log.read(from, to);
    for (let i = entries.length - 1; i >= 0 && inputs.length < LAST_INPUTS; i--) {
      const entry = entries[i];
      const body = decodeEntry(entry);
      if (!Array.isArray(body) || body[0] !== address) continue;
      inputs.push({
        index: entry.index,
        kind: entryKindName(entry.kind),
        timestamp: entry.timestamp,
        input: body.slice(1),
      });
    }
    return inputs;
  }

  /**
   * A ShardSet of its own, as the shards stood right after `index`: restored from the newest valid
   * snapshot set at or before it (or empty, while the log still starts at 1), then the log replayed.
   */
  private async replayTo(index: number): Promise<ShardSet> {
    const { store } = this;
    const shardCount = Math.max(
      1,
      this.service instanceof ActorServiceHost ? this.service.pool.shardCount : 1,
    );
    const options = { services: this.services };
    const set = store.recordingLog
      .snapshotSets()
      .find(
        (s) => s.valid && s.logIndex <= index && s.snapshots.some((e) => e.serviceId === SERVICE_SNAPSHOT_ID),
      );
    let shards: ShardSet;
    let from: number;
    if (set) {
      const part = set.snapshots.find((e) => e.serviceId === SERVICE_SNAPSHOT_ID)!;
      const actors = decodeActorSnapshot(store.snapshots.load(part.snapshotId));
      shards = ShardSet.restore(actors.shards, shardCount, options);
      from = set.logIndex + 1;
    } else {
      shards = new ShardSet(shardCount, options);
      from = 1;
    }
    if (from < store.log.firstIndex)
      throw new HttpError(
        404,
        `index ${index} is before what this member keeps: its oldest snapshot is past it and its log starts at ${store.log.firstIndex}`,
      );
    for (let at = from; at <= index; at += REPLAY_STEP) {
      const entries: LogEntry[] = store.log.read(at, Math.min(index, at + REPLAY_STEP - 1));
      shards.apply(entries);
      // Let the member's own work (heartbeats, appends) run between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return shards;
  }

  private decode(parts: readonly Uint8Array[]) {
    return decodeShardSnapshot(parts, (address) => this.typeOf(address));
  }

  /** The actor type an address names, or why it names none (the shards' own lookup, ActorHost.actorTypeOf). */
  private typeOf(address: string): ActorType | string {
    if (this.services.length === 0) return 'this member hosts the built-in KV service, which has no actors';
    this.lookup ??= new ActorHost(new Map(this.services.map((s) => [s.name, s])), 1);
    return this.lookup.actorTypeOf(address);
  }
}
