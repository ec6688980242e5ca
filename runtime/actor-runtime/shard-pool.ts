// The actor runtime on worker threads: N shards on a piscina pool, one long-lived task per worker that
// owns a MessagePort mailbox. Committed entries go over the ports in batches (one message per shard per
// batch, never one pool.run per entry); outputs come back per batch and are merged by log index, so the
// result equals the in-process ShardSet for the same entries.
//
// Consensus never waits on service work (R4): `apply` only posts a message and returns a promise; the
// main thread's event loop (heartbeats, elections, I/O) keeps running while shards work. The mailbox is
// bounded (R1): entries posted but not yet applied are counted, and beyond `maxPendingEntries` `apply`
// refuses with ShardBusyError, so the caller keeps those entries in the log, answers new client input
// BUSY and offers them again later.

import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { type ShardOutput, shardOfAddress, unpack } from '../../actors/actor-runtime/protocol.ts';
import {
  mergeOutputs,
  routeEntries,
  type ShardSetSnapshot,
  type Shards,
} from '../../actors/actor-runtime/shard-set.ts';
import type { LogEntry } from '../../actors/log/log-entry.ts';
import { encodeBatch } from './batch-codec.ts';
import { decodeOutputs } from './output-codec.ts';
import type { FromShard, ShardTask, ToShard } from './shard-worker.ts';

export interface PendingEffect {
  readonly effectId: string;
  readonly address: string;
  readonly seq: number;
  readonly intent: unknown;
}

export interface ShardPoolOptions {
  /** Number of shards = worker threads. Fixed for the life of a log. */
  readonly shards: number;
  /** Module exporting `services` (the services this member hosts), as a file URL or path. */
  readonly servicesModule: string | URL;
  /** Live actors per shard before passivation (default 10,000). */
  readonly maxLiveActors?: number;
  /** Entries posted to shards and not yet applied before `apply` answers BUSY (default 100,000). */
  readonly maxPendingEntries?: number;
  /** Start from this snapshot set instead of empty shards. */
  readonly snapshot?: ShardSetSnapshot;
}

/** The shards' mailboxes are full: keep the entries, answer new input BUSY, offer them again later. */
export class ShardBusyError extends Error {
  override readonly name = 'ShardBusyError';
  readonly code = 'BUSY';
}

interface Pending {
  remaining: number;
  readonly perShard: (ShardOutput[] | Uint8Array | unknown)[];
  readonly entries: number;
  readonly resolve: (value: (ShardOutput[] | Uint8Array | unknown)[]) => void;
  readonly reject: (error: Error) => void;
}

const WORKER_FILE = new URL('./shard-worker.js', import.meta.url);

export class ShardPool implements Shards {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private inFlightEntries = 0;
  private applied: number;
  private failure: Error | null = null;
  private closed = false;

  private constructor(
    readonly shardCount: number,
    private readonly pool: Piscina,
    private readonly ports: readonly MessagePort[],
    private readonly tasks: readonly Promise<number>[],
    readonly maxPendingEntries: number,
    applied: number,
  ) {
    this.applied = applied;
    ports.forEach((port, shard) => {
      port.on('message', (message: FromShard) => this.onMessage(shard, message));
    });
    tasks.forEach((task, shard) => {
      task.catch((error) => {
        if (!this.closed)
          this.fail(
            `shard ${shard} worker died: ${error instanceof Error ? error.message : JSON.stringify(error)}`,
          );
      });
    });
  }

  static async start(options: ShardPoolOptions): Promise<ShardPool> {
    const { shards } = options;
    if (!(Number.isInteger(shards) && shards >= 1 && shards <= 256)) {
      throw new RangeError(`ShardPool: shards must be an integer in 1..256, got ${shards}`);
    }
    const maxPendingEntries = options.maxPendingEntries ?? 100_000;
    if (!(Number.isInteger(maxPendingEntries) && maxPendingEntries >= 1)) {
      throw new RangeError(`ShardPool: maxPendingEntries must be an integer >= 1, got ${maxPendingEntries}`);
    }
    const servicesModule =
      options.servicesModule instanceof URL || /^[a-z]+:/.test(options.servicesModule)
        ? String(options.servicesModule)
        : String(new URL(options.servicesModule, `file://${process.cwd()}/`));
    const pool = new Piscina({
      filename: WORKER_FILE.href,
      minThreads: shards,
      maxThreads: shards,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
    });
    const ports: MessagePort[] = [];
    const tasks: Promise<number>[] = [];
    const ready: Promise<void>[] = [];
    for (let shard = 0; shard < shards; shard++) {
      const { port1, port2 } = new MessageChannel();
      ports.push(port1);
      ready.push(
        new Promise<void>((resolve) => {
          const onReady = (message: FromShard) => {
            if (message.t !== 'ready') return;
            port1.off('message', onReady);
            resolve();
          };
          port1.on('message', onReady);
        }),
      );
      const task: ShardTask = {
        port: port2,
        shard,
        shardCount: shards,
        servicesModule,
        maxLiveActors: options.maxLiveActors,
        snapshot: options.snapshot,
      };
      tasks.push(pool.run(task, { transferList: [port2] }) as Promise<number>);
    }
    // A worker that fails to start (bad services module) rejects its task: surface that, not a hang.
    const ended = Promise.all(tasks).then(() => {
      throw new Error('a shard task ended during start-up');
    });
    ended.catch(() => {}); // after start-up, a task's end is handled by the pool itself
    try {
      await Promise.race([Promise.all(ready), ended]);
    } catch (error) {
      for (const port of ports) port.close();
      await pool.destroy();
      // Errors cross the thread boundary as plain objects: keep what they say.
      const detail = error instanceof Error ? error.message : JSON.stringify(error);
      throw new Error(
        `ShardPool: a shard worker failed to start (services module ${servicesModule}): ${detail}`,
      );
    }
    return new ShardPool(shards, pool, ports, tasks, maxPendingEntries, options.snapshot?.index ?? 0);
  }

  /** Entries posted to shards and not applied yet. */
  get pendingEntries(): number {
    return this.inFlightEntries;
  }

  /** True while the mailboxes are full (the consensus module should answer new client input BUSY). */
  get busy(): boolean {
    return this.inFlightEntries >= this.maxPendingEntries;
  }

  get lastApplied(): number {
    return this.applied;
  }

  /** Post a batch of committed entries; resolves to its outputs merged by log index. Calls may overlap:
   *  they are applied and resolved in call order. Throws ShardBusyError if the mailboxes are full. */
  apply(entries: readonly LogEntry[]): Promise<ShardOutput[]> {
    const unusable = this.unusable();
    if (unusable) return Promise.reject(unusable);
    if (entries.length === 0) return Promise.resolve([]);
    // One batch is always taken when nothing is pending, however large: a caller that awaits each batch
    // never sees BUSY.
    if (this.inFlightEntries + entries.length > this.maxPendingEntries && this.inFlightEntries > 0) {
      return Promise.reject(
        new ShardBusyError(
          `shard mailboxes hold ${this.inFlightEntries} unapplied entries (limit ${this.maxPendingEntries}); offer these ${entries.length} again once they drain`,
        ),
      );
    }
    this.applied = entries[entries.length - 1].index;
    const batches = routeEntries(entries, this.shardCount);
    this.inFlightEntries += entries.length;
    const parts: (Uint8Array | null)[] = batches.map((batch) =>
      batch.length === 0 ? null : encodeBatch(batch),
    );
    // Entries no shard applies still travel (empty) through shard 0, so results resolve in call order.
    if (!parts.some((part) => part !== null)) parts[0] = encodeBatch([]);
    return this.request(parts, (id, batch) => ({ t: 'apply', id, batch: batch! }), entries.length).then(
      (perShard) => mergeOutputs(perShard.map((bytes) => (bytes ? decodeOutputs(bytes as Uint8Array) : []))),
    );
  }

  /** Every shard's snapshot at the last index posted (taken after all earlier batches, in order). */
  async snapshot(): Promise<ShardSetSnapshot> {
    this.checkOpen();
    const index = this.applied;
    const shards = await this.request(
      this.ports.map(() => true),
      (id) => ({ t: 'snapshot', id, index }),
      0,
    );
    return { index, shards: shards as Uint8Array[] };
  }

  /** The persisted XState snapshot of one actor (for tests and the inspector). */
  async actorState(address: string): Promise<unknown> {
    this.checkOpen();
    const shard = shardOfAddress(address, this.shardCount);
    const parts = await this.request(
      this.ports.map((_, s) => (s === shard ? true : null)),
      (id) => ({ t: 'state', id, address }),
      0,
    );
    return unpack(parts[shard] as Uint8Array) ?? undefined;
  }

  /** External effects decided and not completed, in (address, seq) order: a new leader performs them. */
  async pendingEffects(): Promise<PendingEffect[]> {
    this.checkOpen();
    const parts = await this.request(
      this.ports.map(() => true),
      (id) => ({ t: 'effects', id }),
      0,
    );
    return parts
      .flatMap((bytes) => unpack(bytes as Uint8Array) as PendingEffect[])
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.seq - b.seq));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const port of this.ports) port.postMessage({ t: 'close' } satisfies ToShard);
    await Promise.allSettled(this.tasks);
    for (const port of this.ports) port.close();
    await this.pool.destroy();
  }

  private unusable(): Error | null {
    if (this.closed) return new Error('ShardPool: the pool is closed');
    return this.failure;
  }

  private checkOpen(): void {
    const unusable = this.unusable();
    if (unusable) throw unusable;
  }

  /** Send one message to each shard whose part is non-null; resolve when all of them answered. */
  private request<P>(
    parts: readonly (P | null)[],
    message: (id: number, part: P | null) => ToShard,
    entries: number,
  ): Promise<unknown[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const pending: Pending = { remaining: 0, perShard: parts.map(() => null), entries, resolve, reject };
      parts.forEach((part, shard) => {
        if (part === null) return;
        pending.remaining++;
        const msg = message(id, part);
        if (msg.t === 'apply') this.ports[shard].postMessage(msg, [msg.batch.buffer as ArrayBuffer]);
        else this.ports[shard].postMessage(msg);
      });
      if (pending.remaining === 0) {
        this.inFlightEntries -= entries;
        resolve(pending.perShard);
        return;
      }
      this.pending.set(id, pending);
    });
  }

  /** The pool cannot go on (a shard is in an unknown state): reject everything, refuse new work. */
  private fail(reason: string): void {
    this.failure ??= new Error(`ShardPool: ${reason}; restart the member (it recovers from snapshot + log)`);
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(this.failure);
    }
  }

  private onMessage(shard: number, message: FromShard): void {
    if (message.t === 'ready') return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    if (message.t === 'failed') {
      // A bug in the shard itself (actor errors are replies, not failures): the pool stops.
      this.fail(`shard ${shard} failed: ${message.message}`);
      return;
    }
    pending.perShard[shard] = message.bytes;
    if (--pending.remaining > 0) return;
    this.pending.delete(message.id);
    this.inFlightEntries -= pending.entries;
    pending.resolve(pending.perShard);
  }
}
