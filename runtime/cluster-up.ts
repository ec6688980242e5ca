// `npx chorus cluster up`: a local multi-process cluster for development. It prints where the members
// listen and follows their elections; Ctrl-C stops every member cleanly (SIGTERM: drain and close).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

export const clusterUp = async (options: { members: number; dir: string }): Promise<number> => {
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Clients authenticate by default: a shared token, generated once per directory.
  const token = clientToken(dir);
  const cluster = await LocalCluster.start({
    members: options.members,
    dir,
    overrides: { authentication: { kind: 'shared-token', token } },
    removeOnClose: false,
    onRecord: (id, record) => {
      const msg = String(record.msg ?? '');
      if (INTERESTING.test(msg) || Number(record.level ?? 30) >= 40)
        process.stdout.write(`${formatRecord(id, record)}\n`);
    },
  });
  process.stdout.write(
    [
      `chorus: ${options.members}-member cluster starting in ${dir}`,
      `  configuration: ${cluster.configFile}`,
      `  client endpoints: ${cluster.endpoints().join(',')}`,
      `  client token (clients send it as credentials): ${join(dir, CLIENT_TOKEN_FILE)}`,
      `  peer secret (members prove they hold it to each other): ${join(dir, PEER_SECRET_FILE)}`,
      ...cluster.config.members.map(
        (m) => `  member ${m.id}: npx chorus tool ${join(cluster.config.dir, `member-${m.id}`)} describe`,
      ),
      '  Ctrl-C stops the cluster.',
      '',
    ].join('\n'),
  );
  const leader = await cluster.waitForLeader(15_000).catch(() => null);
  if (leader !== null) process.stdout.write(`chorus: member ${leader} leads\n`);
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write('\nchorus: stopping the cluster (SIGTERM to every member)\n');
  await cluster.close({ graceful: true });
  return 0;
};
