// Chorus persistence: one LMDB environment per member directory holding the replicated log, node state,
// recording log and snapshots, with checksums everywhere, a start-up scan, backup and restore.

export {
  BACKUP_MANIFEST,
  type BackupManifest,
  backupMember,
  type RestoreReport,
  restoreMember,
} from './backup.ts';
export { StorageError, type StorageErrorCode } from './errors.ts';
export { LogStore, type PurgeBoundary } from './log-store.ts';
export { MEMBER_LOCK_FILE, pidAlive } from './member-dir-lock.ts';
export {
  DEFAULT_MAP_SIZE_BYTES,
  type MemberStatus,
  MemberStore,
  type MemberStoreOptions,
  openMemberStore,
  type StorageUsage,
} from './member-store.ts';
export { INITIAL_NODE_STATE, type NodeState, NodeStateStore } from './node-state.ts';
export {
  type NewSnapshotSet,
  type RecordingEntry,
  RecordingLog,
  type SnapshotEntry,
  type SnapshotSet,
  type TermEntry,
} from './recording-log.ts';
export type { RecoveryPlan } from './recovery-plan.ts';
export {
  CONSENSUS_MODULE_SERVICE_ID,
  type SnapshotDescriptor,
  type SnapshotInfo,
  SnapshotStore,
  SnapshotWriter,
} from './snapshot-store.ts';
export { type ScanProblem, type ScanReport, StartupScanError } from './startup-scan.ts';
export { isSafeNonNegative, isTerm, MAX_TERM } from './values.ts';
