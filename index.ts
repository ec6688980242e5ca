// The public API of the chorus package: the client library, configuration, the member, the wire codec.

export { decodeKvCommand, encodeKvCommand, type KvCommand, type KvResult } from './actors/services/kv.ts';
export { EntryKind, type LogEntry } from './machines/log-entry.ts';
export {
  ChorusClient,
  type ClientOptions,
  CommandTimeoutError,
  SessionClosedError,
} from './runtime/client.ts';
export { encodeFrame, type Frame, FrameDecoder, FrameError, PROTOCOL_VERSION } from './runtime/codec.ts';
export {
  type ClusterConfig,
  ConfigError,
  loadClusterConfig,
  type MemberConfig,
  parseMembersString,
  resolveClusterConfig,
  validateClusterConfig,
} from './runtime/config.ts';
export { LocalCluster } from './runtime/local-cluster.ts';
export { Member, type MemberOptions, type MemberStatus } from './runtime/member.ts';
