// The public API of the chorus package. Grows as the parts land: configuration and the wire codec today.

export { EntryKind, type LogEntry } from './machines/log-entry.ts';
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
