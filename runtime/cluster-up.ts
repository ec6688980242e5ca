// `npx chorus cluster up`: a local multi-process cluster for development. It prints where the members
// listen, the data directory and how to inspect each member, and follows their elections; Ctrl-C stops
// every member cleanly (SIGTERM: drain and close).
//
// Without --config it writes a configuration on free loopback ports under --dir, with a peer secret and a
// client token of its own; with --config it runs that file as it is (its ports, data directory, secrets
// and authentication). --services names the services module to run in either case.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ClusterConfig, type ClusterConfigInput, loadClusterConfig } from './config.ts';
import { endpointsOf, InspectorServer } from './inspector/server.ts';
import { formatRecord, LocalCluster, newSecret, PEER_SECRET_FILE } from './local-cluster.ts';

/** The file holding the client token of a cluster `cluster up` starts (kept across runs in one directory). */
export const CLIENT_TOKEN_FILE = 'client-token';

/** The client token in `dir`, created (32 random bytes, base64, mode 0600) if there is none yet. */
const clientToken = (dir: string): string => {
  const file = join(dir, CLIENT_TOKEN_FILE);
  if (!existsSync(file)) writeFileSync(file, `${newSecret()}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
};

const INTERESTING =
  /^(ELECTION_STATE_CHANGE|ROLE_CHANGE|MODULE_STATE_CHANGE|member (listening|closed|stopped)|snapshot)/;

export interface ClusterUpOptions {
  /** Cluster size when no configuration file is given. */
  readonly members: number;
  /** Base directory when no configuration file is given (configuration, secrets, data/). */
  readonly dir: string;
  /** A cluster configuration file to run as it is. */
  readonly config?: string;
  /** A services module (relative to the working directory); overrides the configuration's. */
  readonly services?: string;
}

/** What to start: a configuration file's, or one on free loopback ports with its own secrets. */
const plan = (
  options: ClusterUpOptions,
): { base: string; config?: ClusterConfig; overrides: Partial<ClusterConfigInput>; lines: string[] } => {
  const services = options.services === undefined ? {} : { services: resolve(options.services) };
  if (options.config !== undefined) {
    const config = { ...loadClusterConfig(options.config), ...services };
    const auth = config.authentication;
    return {
      // Not next to the file: the configuration this writes (with --services applied) must never
      // overwrite the user's own.
      base: join(config.dir, 'cluster-up'),
      config,
      overrides: {},
      lines: [
        `  configuration: ${resolve(options.config)}`,
        `  client authentication: ${auth.kind}${auth.kind === 'shared-token' ? ' (the token in the configuration)' : ''}`,
      ],
    };
  }
  const base = resolve(options.dir);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  // Clients authenticate by default: a shared token, generated once per directory.
  const token = clientToken(base);
  return {
    base,
    overrides: { authentication: { kind: 'shared-token', token }, ...services },
    lines: [
      `  client token (clients send it as credentials): ${join(base, CLIENT_TOKEN_FILE)}`,
      `  peer secret (members prove they hold it to each other): ${join(base, PEER_SECRET_FILE)}`,
    ],
  };
};

export const clusterUp = async (options: ClusterUpOptions): Promise<number> => {
  const { base, config, overrides, lines } = plan(options);
  const cluster = await LocalCluster.start({
    members: options.members,
    dir: base,
    ...(config === undefined ? {} : { config }),
    overrides,
    removeOnClose: false,
    onRecord: (id, record) => {
      const msg = String(record.msg ?? '');
      if (INTERESTING.test(msg) || Number(record.level ?? 30) >= 40)
        process.stdout.write(`${formatRecord(id, record)}\n`);
    },
  });
  const running = cluster.config;
  const inspected = endpointsOf(running);
  const inspector =
    inspected.length === 0
      ? null
      : await InspectorServer.start({
          members: inspected,
          ...(running.adminHttp.token ? { token: running.adminHttp.token } : {}),
        });
  process.stdout.write(
    [
      `chorus: ${running.members.length}-member cluster starting`,
      `  data directory: ${running.dir}`,
      `  client endpoints: ${cluster.endpoints().join(',')}`,
      `  services: ${running.services ?? 'the built-in KV service'}`,
      `  inspector: ${inspector?.url ?? 'none (no member has an adminHttpPort in the configuration)'}`,
      ...lines,
      ...running.members.map(
        (m) =>
          `  member ${m.id}: client ${m.host}:${m.clientPort}, peers ${m.host}:${m.peerPort}${m.adminHttpPort === undefined ? '' : `, admin HTTP ${m.adminHttpPort} (metrics)`}; npx chorus tool ${cluster.memberDir(m.id)} describe`,
      ),
      '  Ctrl-C stops the cluster.',
      '',
    ].join('\n'),
  );
  const leader = await cluster.waitForLeader(60_000).catch(() => null);
  if (leader !== null) process.stdout.write(`chorus: member ${leader} leads\n`);
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write('\nchorus: stopping the cluster (SIGTERM to every member)\n');
  await inspector?.close();
  await cluster.close({ graceful: true });
  return 0;
};
