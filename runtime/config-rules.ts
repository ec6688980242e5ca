// The rules between a cluster configuration's fields (ids, ports, timeouts that contradict each other,
// peer authentication), apart from each field's own schema in config.ts. Each problem names the field
// and the fix.

import type { ClusterConfig, ConfigProblem } from './config.ts';

/** Hosts that name the same interfaces, for port-clash checks. */
const hostKey = (host: string): string => (host === 'localhost' || host === '::1' ? '127.0.0.1' : host);
const WILDCARD = new Set(['0.0.0.0', '::']);
/** A loopback address or name: only this machine's processes reach a listener bound to it. */
export const isLoopbackHost = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/**
 * The rules between fields. Each returns problems naming the field and the fix. A rule that reads a field
 * in `unusable` (one that did not parse: it has its own problem already) is skipped.
 */
export const crossFieldRules = (
  config: ClusterConfig,
  unusable: ReadonlySet<string> = new Set(),
): ConfigProblem[] => {
  const problems: ConfigProblem[] = [];
  const usable = (...fields: string[]) => fields.every((field) => !unusable.has(field));
  const add = (field: string, message: string, reads: readonly string[] = [field]) => {
    if (usable(field, ...reads)) problems.push({ field, message });
  };

  // Member ids: unique, and 0..N-1 so a member's id is also its position (as Aeron expects).
  const members = usable('members') ? config.members : [];
  const seenIds = new Map<number, number>();
  members.forEach((m, i) => {
    const first = seenIds.get(m.id);
    if (first !== undefined) {
      add(
        `members[${i}].id`,
        `id ${m.id} is already used by members[${first}]; give every member its own id`,
      );
    } else seenIds.set(m.id, i);
  });
  const ids = [...seenIds.keys()].sort((a, b) => a - b);
  if (seenIds.size === members.length && ids.some((id, i) => id !== i)) {
    add('members', `member ids must be 0..${members.length - 1} with no gaps (got ${ids.join(', ')})`);
  }

  // Ports: no two listeners on the same host and port (a wildcard host clashes with every host).
  const listeners: { field: string; host: string; port: number }[] = [];
  members.forEach((m, i) => {
    listeners.push({ field: `members[${i}].clientPort`, host: hostKey(m.host), port: m.clientPort });
    listeners.push({ field: `members[${i}].peerPort`, host: hostKey(m.host), port: m.peerPort });
    if (m.adminHttpPort !== undefined && usable('adminHttp')) {
      // The admin HTTP listener binds adminHttp.host, on the member's machine (named by its host).
      const bind = config.adminHttp.host;
      const host = WILDCARD.has(bind) || isLoopbackHost(bind) ? hostKey(m.host) : hostKey(bind);
      listeners.push({ field: `members[${i}].adminHttpPort`, host, port: m.adminHttpPort });
    }
  });
  listeners.forEach((l, i) => {
    const clash = listeners
      .slice(0, i)
      .find((o) => o.port === l.port && (o.host === l.host || WILDCARD.has(o.host) || WILDCARD.has(l.host)));
    if (clash) {
      add(
        l.field,
        `port ${l.port} on ${l.host} is already taken by ${clash.field}; choose a free port for this listener`,
      );
    }
  });

  // The admin HTTP listeners: anywhere but loopback they answer only requests carrying the token.
  if (
    usable('adminHttp') &&
    !isLoopbackHost(config.adminHttp.host) &&
    config.adminHttp.token === undefined &&
    members.some((m) => m.adminHttpPort !== undefined)
  ) {
    add(
      'adminHttp.token',
      `is required when adminHttp.host is ${config.adminHttp.host} (not a loopback address): set a token of at least 16 characters, or bind 127.0.0.1`,
    );
  }

  // Timeouts that contradict each other.
  if (config.leaderHeartbeatIntervalMs * 3 > config.leaderHeartbeatTimeoutMs) {
    add(
      'leaderHeartbeatIntervalMs',
      `${config.leaderHeartbeatIntervalMs} ms is not well under leaderHeartbeatTimeoutMs (${config.leaderHeartbeatTimeoutMs} ms): ` +
        'make the interval at most a third of the timeout, or followers will start elections under a healthy leader',
      ['leaderHeartbeatTimeoutMs'],
    );
  }
  if (config.electionStatusIntervalMs * 2 > config.electionTimeoutMs) {
    add(
      'electionStatusIntervalMs',
      `${config.electionStatusIntervalMs} ms must be at most half of electionTimeoutMs (${config.electionTimeoutMs} ms), ` +
        'so members exchange canvass status several times per election',
      ['electionTimeoutMs'],
    );
  }
  if (config.leaderHeartbeatIntervalMs >= config.electionTimeoutMs) {
    add(
      'electionTimeoutMs',
      `${config.electionTimeoutMs} ms must be longer than leaderHeartbeatIntervalMs (${config.leaderHeartbeatIntervalMs} ms), ` +
        'so a new leader can announce itself before another election starts',
      ['leaderHeartbeatIntervalMs'],
    );
  }
  if (config.startupCanvassTimeoutMs < config.electionTimeoutMs) {
    add(
      'startupCanvassTimeoutMs',
      `${config.startupCanvassTimeoutMs} ms must be at least electionTimeoutMs (${config.electionTimeoutMs} ms): ` +
        'at start-up members wait longer for every peer before electing with only a quorum',
      ['electionTimeoutMs'],
    );
  }
  if (config.members.length > 1 && config.peerAuthentication === undefined) {
    add(
      'peerAuthentication',
      'is missing: members must prove to each other that they hold the cluster secret; add ' +
        '"peerAuthentication": { "secretFile": "./peer-secret" } (a file of random secrets, one per line, mode 0600; ' +
        '`npx chorus cluster up` writes one)',
      ['members'],
    );
  }
  const failoverMs = config.leaderHeartbeatTimeoutMs + config.electionTimeoutMs;
  if (config.sessionTimeoutMs <= 2 * failoverMs) {
    add(
      'sessionTimeoutMs',
      `${config.sessionTimeoutMs} ms must be more than twice a failover (leaderHeartbeatTimeoutMs + electionTimeoutMs = ${failoverMs} ms), ` +
        'or client sessions will time out during every leader election',
      ['leaderHeartbeatTimeoutMs', 'electionTimeoutMs'],
    );
  }
  return problems;
};
