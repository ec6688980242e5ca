// What a member starts from, and the consensus module it builds from it: the store's recovery plan (the
// latest usable snapshot set, then the log after it), the service restored to that snapshot, and the
// module's configuration from the cluster configuration. Used at start-up and again when a member whose
// storage failed rejoins the cluster (D1, D2).

import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  ConsensusModule,
  type ConsensusModuleConfig,
  type ModuleRecovery,
} from '../actors/consensus/consensus-module.ts';
import type { PersistedState, SnapshotImage } from '../actors/consensus/index.ts';
import { decodeModulePart, encodeSnapshotParts, snapshotParts } from '../actors/consensus/snapshot-parts.ts';
import {
  type Authenticator,
  allowAllAuthenticator,
  challengeResponseAuthenticator,
  sharedTokenAuthenticator,
} from '../actors/sessions/authenticators.ts';
import { CONSENSUS_MODULE_SERVICE_ID, type MemberStore } from '../persistence/index.ts';
import { type ClusterConfig, MAX_APPEND_BATCH_BYTES, memberById } from './config.ts';
import { SERVICE_SNAPSHOT_ID } from './member-storage.ts';
import type { ServiceHost } from './service-host.ts';
import { maxCommandBytes } from './wire/client-frames.ts';

/** Read the store's recovery plan and restore the service to its snapshot; what the module starts from. */
export const loadRecovery = async (
  store: MemberStore,
  service: ServiceHost,
  logger: Logger,
): Promise<ModuleRecovery> => {
  const plan = store.recoveryPlan();
  for (const skipped of plan.skipped) {
    logger.warn(
      { setId: skipped.setId, logIndex: skipped.logIndex },
      `snapshot set skipped: ${skipped.reason}`,
    );
  }
  let snapshot: SnapshotImage | null = null;
  let sessions: ModuleRecovery['sessions'] = null;
  if (plan.snapshotSet) {
    const { logIndex, term } = plan.snapshotSet;
    const part = (serviceId: number): Uint8Array | null => {
      const found = plan.snapshots.find((s) => s.entry.serviceId === serviceId);
      return found ? store.snapshots.load(found.entry.snapshotId) : null;
    };
    const data = encodeSnapshotParts({
      module: part(CONSENSUS_MODULE_SERVICE_ID),
      service: part(SERVICE_SNAPSHOT_ID),
    });
    snapshot = { index: logIndex, term, data };
    const parts = snapshotParts(data);
    sessions = decodeModulePart(parts.module);
    await service.restore(parts.service);
  } else {
    await service.restore(null);
  }
  const entries = plan.replayFrom <= plan.replayTo ? store.log.read(plan.replayFrom, plan.replayTo) : [];
  const persisted: PersistedState = {
    currentTerm: plan.nodeState.currentTerm,
    candidateTermId: plan.nodeState.candidateTermId,
    votedFor: plan.nodeState.votedFor,
    snapshot,
    entries,
  };
  logger.info(
    {
      dir: store.dir,
      term: persisted.currentTerm,
      snapshotIndex: snapshot?.index ?? 0,
      lastIndex: store.log.lastIndex,
      scanned: store.startupReport?.entriesChecked,
    },
    'member store opened and validated',
  );
  return { persisted, sessions };
};

/** The consensus module a member runs, configured from the cluster configuration. */
export const newConsensusModule = (
  config: ClusterConfig,
  memberId: number,
  authenticator: Authenticator | undefined,
  service: ServiceHost,
  recovery: ModuleRecovery,
): ConsensusModule => {
  const maxBytes = maxCommandBytes(config);
  const moduleConfig: ConsensusModuleConfig = {
    consensus: {
      memberId,
      members: config.members.map((m) => m.id),
      timeouts: {
        electionTimeoutMs: config.electionTimeoutMs,
        heartbeatIntervalMs: config.leaderHeartbeatIntervalMs,
        heartbeatTimeoutMs: config.leaderHeartbeatTimeoutMs,
        startupCanvassTimeoutMs: config.startupCanvassTimeoutMs,
        electionStatusIntervalMs: config.electionStatusIntervalMs,
      },
      maxBatchBytes: MAX_APPEND_BATCH_BYTES,
      randomSeed: randomBytes(4).readUInt32LE(0),
      // The member reports SERVICES_REPLAYED after every APPLY: the replay phases wait for the services.
      awaitServicesReplay: true,
    },
    sessions: {
      memberId,
      maxSessions: config.maxSessions,
      // The client port refuses past this first, naming limits.maxClientConnections.
      maxConnections: maxClientConnections(config),
      sessionTimeoutMs: config.sessionTimeoutMs,
      authenticator: authenticator ?? authenticatorFor(config.authentication),
      // A session's proof of ownership (issue 11): unpredictable, from the OS's CSPRNG.
      resumeTokens: (length: number) => new Uint8Array(randomBytes(length)),
    },
    clientEndpoints: new Map(config.members.map((m) => [m.id, `${m.host}:${m.clientPort}`])),
    maxUnappliedEntries: config.maxUnappliedEntries,
    snapshotPolicy: { everyEntries: config.snapshot.everyEntries, everyBytes: config.snapshot.everyBytes },
    admit: (body) => service.admit(body, maxBytes),
  };
  memberById(config, memberId);
  return new ConsensusModule(moduleConfig, recovery);
};

/** The built-in authenticator a configuration names. Challenge nonces come from the OS's CSPRNG. */
export const authenticatorFor = (authentication: ClusterConfig['authentication']): Authenticator => {
  switch (authentication.kind) {
    case 'allow-all':
      return allowAllAuthenticator();
    case 'shared-token':
      return sharedTokenAuthenticator({ token: authentication.token });
    case 'challenge-response':
      return challengeResponseAuthenticator({
        secrets: authentication.secrets,
        nonces: (length) => randomBytes(length),
      });
  }
};

export const maxClientConnections = (config: ClusterConfig): number =>
  config.limits.maxClientConnections ?? config.maxSessions * 2;
