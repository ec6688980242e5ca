// `npx chorus inspect --cluster ENDPOINTS | --config FILE [--port P]`: serve the inspector page for a
// running cluster until Ctrl-C.

import { loadClusterConfig } from '../config.ts';
import { endpointsOf, type InspectedEndpoint, InspectorServer, parseEndpoints } from './server.ts';

export interface InspectCommandOptions {
  readonly cluster?: string;
  readonly config?: string;
  readonly port?: number;
}

export const inspectCommand = async (options: InspectCommandOptions): Promise<number> => {
  if ((options.cluster === undefined) === (options.config === undefined))
    throw new Error(
      'give either --cluster with the members’ admin URLs or --config with the cluster configuration',
    );
  let members: InspectedEndpoint[];
  let token: string | undefined;
  if (options.config !== undefined) {
    const config = loadClusterConfig(options.config);
    members = endpointsOf(config);
    token = config.adminHttp.token;
    if (members.length === 0)
      throw new Error(
        `${options.config}: no member has an adminHttpPort, so there is nothing to inspect: give each member one (members[].adminHttpPort)`,
      );
  } else {
    members = parseEndpoints(options.cluster ?? '');
    token = process.env.CHORUS_ADMIN_TOKEN;
    if (members.length === 0) throw new Error('--cluster names no member: give http://host:port,...');
  }
  const inspector = await InspectorServer.start({
    members,
    ...(token ? { token } : {}),
    port: options.port ?? 0,
  });
  process.stdout.write(
    `chorus: inspector at ${inspector.url} (members ${members.map((m) => `${m.id} ${m.url}`).join(', ')}); Ctrl-C stops it\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await inspector.close();
  return 0;
};
