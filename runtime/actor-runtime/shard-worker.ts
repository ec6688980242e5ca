// One shard inside a piscina worker. piscina runs exactly one task per worker and that task never
// resolves until the pool closes it: it owns the MessagePort it was given and applies every batch that
// arrives on it, in order, with the same `Shard` the simulator runs in-process.

import type { MessagePort } from 'node:worker_threads';
import { pack, shardOfAddress } from '../../actors/actor-runtime/protocol.ts';
import type { HostedService } from '../../actors/actor-runtime/service.ts';
import { Shard } from '../../actors/actor-runtime/shard.ts';
import { decodeBatch } from './batch-codec.ts';
import { encodeOutputs } from './output-codec.ts';

export interface ShardTask {
  readonly port: MessagePort;
  readonly shard: number;
  readonly shardCount: number;
  /** Module (file URL) exporting `services: Service[]`. */
  readonly servicesModule: string;
  readonly maxLiveActors?: number;
  /** Restore from these shard snapshot blobs (all of a set; filtered here if the shard count changed). */
  readonly snapshot?: { readonly index: number; readonly shards: readonly Uint8Array[] };
}

/** Main thread → worker. */
export type ToShard =
  | { readonly t: 'apply'; readonly id: number; readonly batch: Uint8Array }
  | { readonly t: 'snapshot'; readonly id: number; readonly index: number }
  | { readonly t: 'state'; readonly id: number; readonly address: string }
  | { readonly t: 'effects'; readonly id: number }
  | { readonly t: 'close' };

/** Worker → main thread. Outputs travel as one msgpack buffer per batch. */
export type FromShard =
  | { readonly t: 'ready' }
  | { readonly t: 'done'; readonly id: number; readonly bytes: Uint8Array }
  | { readonly t: 'failed'; readonly id: number; readonly message: string };

const toBuffer = (bytes: Uint8Array): Uint8Array => {
  // A fresh, exactly-sized buffer that can be transferred.
  const copy = new Uint8Array(new ArrayBuffer(bytes.byteLength));
  copy.set(bytes);
  return copy;
};

export default async function runShard(task: ShardTask): Promise<number> {
  const loaded = (await import(task.servicesModule)) as { services?: readonly HostedService[] };
  if (!Array.isArray(loaded.services)) {
    throw new TypeError(
      `shard worker: ${task.servicesModule} must export 'services', an array of defineService(...) results`,
    );
  }
  const options = {
    services: loaded.services,
    shard: task.shard,
    shardCount: task.shardCount,
    maxLiveActors: task.maxLiveActors,
  };
  let shard: Shard;
  if (task.snapshot) {
    const same = task.snapshot.shards.length === task.shardCount;
    shard = same
      ? Shard.restore(task.snapshot.shards[task.shard], options)
      : Shard.restore(
          task.snapshot.shards,
          options,
          (a) => shardOfAddress(a, task.shardCount) === task.shard,
        );
  } else {
    shard = new Shard(options);
  }
  const { port } = task;
  return new Promise<number>((resolve) => {
    port.on('message', (message: ToShard) => {
      switch (message.t) {
        case 'apply': {
          try {
            const bytes = toBuffer(encodeOutputs(shard.apply(decodeBatch(message.batch))));
            port.postMessage({ t: 'done', id: message.id, bytes } satisfies FromShard, [
              bytes.buffer as ArrayBuffer,
            ]);
          } catch (error) {
            port.postMessage({
              t: 'failed',
              id: message.id,
              message: String((error as Error)?.stack ?? error),
            } satisfies FromShard);
          }
          return;
        }
        case 'snapshot': {
          const bytes = toBuffer(shard.snapshot(message.index));
          port.postMessage({ t: 'done', id: message.id, bytes } satisfies FromShard, [
            bytes.buffer as ArrayBuffer,
          ]);
          return;
        }
        case 'state': {
          const bytes = toBuffer(pack(shard.actorState(message.address) ?? null));
          port.postMessage({ t: 'done', id: message.id, bytes } satisfies FromShard, [
            bytes.buffer as ArrayBuffer,
          ]);
          return;
        }
        case 'effects': {
          const bytes = toBuffer(pack(shard.pendingEffects()));
          port.postMessage({ t: 'done', id: message.id, bytes } satisfies FromShard, [
            bytes.buffer as ArrayBuffer,
          ]);
          return;
        }
        case 'close':
          port.close();
          resolve(shard.lastApplied);
          return;
      }
    });
    port.postMessage({ t: 'ready' } satisfies FromShard);
  });
}
