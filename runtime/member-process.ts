// `npx chorus member --config FILE --id N`: one member as a process, with signal handling.
// SIGTERM or SIGINT: drain — hand leadership over if leading, close connections, flush, exit 0 (O3).
// After SIGKILL, the next start validates the store (every checksum) and recovers from snapshot + log.

import pino from 'pino';
import {
  type ClusterConfig,
  ConfigError,
  loadClusterConfig,
  memberById,
  resolveClusterConfig,
} from './config.ts';
import { Member } from './member.ts';

/** The exit code of a member stopped by a failure (docs/runbook.md). */
export const EXIT_FAILURE = 70;

export interface MemberProcessOptions {
  readonly config?: string;
  /** A compact members string instead of a file (`0,host:clientPort:peerPort|...`). */
  readonly members?: string;
  readonly dir?: string;
  readonly id: number;
  readonly logLevel?: string;
}

export const runMemberProcess = async (options: MemberProcessOptions): Promise<void> => {
  let config: ClusterConfig;
  if (options.config) config = loadClusterConfig(options.config);
  else if (options.members)
    config = resolveClusterConfig(
      { members: options.members, ...(options.dir ? { dir: options.dir } : {}) },
      '--members',
    );
  else
    throw new ConfigError([
      { field: '--config', message: 'give a configuration file with --config FILE (or --members)' },
    ]);
  if (options.dir && options.config) config = { ...config, dir: options.dir };
  memberById(config, options.id);
  const logger = pino({
    level: options.logLevel ?? process.env.CHORUS_LOG_LEVEL ?? 'info',
    base: { member: options.id },
  });
  // The only exit on a failure: the member stopped itself (FATAL record) and reports it here (code 70).
  const member = await Member.start({
    config,
    memberId: options.id,
    logger,
    onFailure: () => process.exit(EXIT_FAILURE),
  });
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining and closing');
    try {
      await member.stop({ graceful: true });
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'error while closing');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
};
