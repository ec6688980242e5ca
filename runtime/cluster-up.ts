// `npx chorus cluster up`: a local multi-process cluster for development. It prints where the members
// listen and follows their elections; Ctrl-C stops every member cleanly (SIGTERM: drain and close).

import { join, resolve } from 'node:path';
import { formatRecord, LocalCluster } from './local-cluster.ts';

const INTERESTING =
  /^(ELECTION_STATE_CHANGE|ROLE_CHANGE|MODULE_STATE_CHANGE|member (listening|closed|stopped)|snapshot)/;

export const clusterUp = async (options: { members: number; dir: string }): Promise<number> => {
  const dir = resolve(options.dir);
  const cluster = await LocalCluster.start({
    members: options.members,
    dir,
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
