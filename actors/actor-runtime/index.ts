// The actor runtime's public surface for the consensus module and the shell.

export { OUTBOX_SNAPSHOT_VERSION, Outbox } from './outbox.ts';
export * from './protocol.ts';
export { SHARD_SNAPSHOT_VERSION, Shard, type ShardOptions } from './shard.ts';
export {
  decodeShardSetSnapshot,
  encodeShardSetSnapshot,
  mergeOutputs,
  restoreLatestValid,
  routeEntries,
  SHARD_SET_SNAPSHOT_VERSION,
  ShardSet,
  type ShardSetSnapshot,
  type Shards,
} from './shard-set.ts';
