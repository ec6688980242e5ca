// Cluster configuration: one zod schema, the rules that tie fields together, and the two ways operators
// write it (a JSON file, or Aeron's compact members string). Everything is validated before anything
// starts; every problem names the field and says how to fix it (failure case O1).

import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { crossFieldRules } from './config-rules.ts';
import { CLIENT_ENVELOPE_BYTES, maxCommandBytes } from './wire/client-frames.ts';
import { DEFAULT_MAX_FRAME_BYTES } from './wire/frame-limits.ts';

const port = z
  .number()
  .int()
  .min(1, 'must be a TCP port in 1..65535')
  .max(65535, 'must be a TCP port in 1..65535');
const ms = (what: string) =>
  z.number().int(`${what} must be a whole number of milliseconds`).positive(`${what} must be above 0`);

export const memberSchema = z
  .object({
    id: z.number().int('must be a whole number').min(0, 'must be 0 or more'),
    host: z.string().min(1, 'must name a host, for example 127.0.0.1'),
    clientPort: port,
    peerPort: port,
    /** The member's admin HTTP port (metrics, the inspector's feed); left out: no admin HTTP listener. */
    adminHttpPort: port.optional(),
  })
  .strict();

/**
 * Where members' admin HTTP listeners bind (each on its member's `adminHttpPort`). Loopback by default; on
 * any other address every request must carry `Authorization: Bearer <token>`.
 */
export const adminHttpSchema = z
  .object({
    host: z.string().min(1, 'must name an address to bind, for example 127.0.0.1').default('127.0.0.1'),
    token: z
      .string()
      .min(16, 'must be at least 16 characters (for example 32 random bytes in base64)')
      .optional(),
  })
  .strict();

export const snapshotPolicySchema = z
  .object({
    /** Take a snapshot after this many log entries since the last one; null turns it off. */
    everyEntries: z.number().int().positive().nullable().default(100_000),
    /** Take a snapshot after this many log bytes since the last one; null turns it off. */
    everyBytes: z
      .number()
      .int()
      .positive()
      .nullable()
      .default(64 * 1024 * 1024),
    /** Snapshots kept on disk (the newest first); older ones are deleted. */
    keep: z.number().int().min(1, 'must keep at least 1 snapshot').max(100).default(3),
  })
  .strict();

/** How members authenticate clients (a pluggable authenticator; these are the built-in ones). */
export const authenticationSchema = z.discriminatedUnion('kind', [
  /** Every client is accepted (development). */
  z.object({ kind: z.literal('allow-all') }).strict(),
  /** Clients send a shared token as their credentials. */
  z
    .object({
      kind: z.literal('shared-token'),
      token: z.string().min(16, 'must be at least 16 characters (for example 32 random bytes in base64)'),
    })
    .strict(),
  /** Clients send their principal; the member challenges with a nonce; they answer HMAC-SHA256(secret, nonce). */
  z
    .object({
      kind: z.literal('challenge-response'),
      secrets: z.record(z.string().min(1), z.string().min(16, 'each secret must be at least 16 characters')),
    })
    .strict(),
]);

/**
 * How members prove to each other that they hold the cluster's secret (an HMAC challenge over HELLO:
 * runtime/wire/peer-handshake.ts). Either a file of secrets (one per line, mode 0600, relative to the
 * configuration file) or the secrets inline (tests). The first secret signs; any of them verifies, so a
 * secret is rotated by adding the new one second, then first, then removing the old one (docs/runbook.md).
 */
export const peerAuthenticationSchema = z.union([
  z
    .object({
      secretFile: z
        .string()
        .min(1, 'must name the file holding the cluster secret, for example ./peer-secret'),
    })
    .strict(),
  z
    .object({
      secrets: z
        .array(
          z
            .string()
            .min(32, 'each secret must be at least 32 characters (for example 32 random bytes in base64)'),
        )
        .min(1, 'needs at least one secret'),
    })
    .strict(),
]);

/** Limits on every port; every refusal names the setting that raises it (`limits.<name>`). */
export const limitsSchema = z
  .object({
    /**
     * A new connection must complete its handshake within this time or is closed: a peer proves it holds the
     * cluster secret, a client sends CONNECT, an admin client sends its request (slowloris).
     */
    handshakeTimeoutMs: ms('limits.handshakeTimeoutMs').default(5_000),
    /** A client or admin connection that delivers no complete frame for this long is closed (peers excepted). */
    idleTimeoutMs: ms('limits.idleTimeoutMs').default(30_000),
    /** Client connections a member holds at once; left out: 2 × maxSessions. */
    maxClientConnections: z.number().int().positive('must allow at least 1 connection').optional(),
    /** Connections from one remote address on the client port, and handshakes in progress on the peer port. */
    maxConnectionsPerAddress: z.number().int().positive('must allow at least 1 connection').default(256),
    /** Peer-port connections that have not yet proved they hold the cluster secret, from all addresses. */
    maxPendingPeerConnections: z.number().int().positive('must allow at least 1 connection').default(64),
    /** Connections to the admin socket at once. */
    maxAdminConnections: z.number().int().positive('must allow at least 1 connection').default(4),
  })
  .strict();

const LIMIT_DEFAULTS = limitsSchema.parse({});

/**
 * Timing defaults aim at about one second from the loss of a leader to a new leader on a LAN: followers
 * notice after `leaderHeartbeatTimeoutMs`, canvass and nominate within `electionTimeoutMs`.
 */
export const clusterConfigSchema = z
  .object({
    members: z.array(memberSchema).min(1, 'needs at least one member'),
    /** Base data directory; each member keeps its files under `<dir>/member-<id>`. In a configuration file, relative to that file. */
    dir: z.string().min(1, 'must name a data directory').default('./data'),
    electionTimeoutMs: ms('electionTimeoutMs').default(400),
    electionStatusIntervalMs: ms('electionStatusIntervalMs').default(20),
    leaderHeartbeatIntervalMs: ms('leaderHeartbeatIntervalMs').default(50),
    leaderHeartbeatTimeoutMs: ms('leaderHeartbeatTimeoutMs').default(500),
    startupCanvassTimeoutMs: ms('startupCanvassTimeoutMs').default(2_000),
    sessionTimeoutMs: ms('sessionTimeoutMs').default(10_000),
    maxSessions: z.number().int().positive('must allow at least 1 session').default(1_000),
    /** Back-pressure: past this many appended but unapplied entries, client commands are answered BUSY. */
    maxUnappliedEntries: z.number().int().positive('must allow at least 1 entry').default(50_000),
    snapshot: snapshotPolicySchema.default({ everyEntries: 100_000, everyBytes: 64 * 1024 * 1024, keep: 3 }),
    workerShards: z
      .number()
      .int()
      .min(1, 'needs at least 1 worker shard')
      .max(64, 'at most 64 worker shards')
      .default(2),
    authentication: authenticationSchema.default({ kind: 'allow-all' }),
    /** Required with more than one member: see peerAuthenticationSchema. */
    peerAuthentication: peerAuthenticationSchema.optional(),
    limits: limitsSchema.default(LIMIT_DEFAULTS),
    /** The admin HTTP listeners (metrics and the inspector's feed): see adminHttpSchema. */
    adminHttp: adminHttpSchema.default({ host: '127.0.0.1' }),
    /**
     * The actor services this cluster runs: a module exporting `services` (defineService results), e.g.
     * "./examples/counter-service.ts", relative to the configuration file (or the working directory for a
     * configuration given in code). Left out: the built-in KV service.
     */
    services: z
      .string()
      .min(1, 'must name a module path, for example ./examples/counter-service.ts')
      .optional(),
    /** LMDB map size per member: the most the member's store may grow to. */
    mapSizeBytes: z
      .number()
      .int()
      .min(1024 * 1024, 'must be at least 1 MiB')
      .default(4 * 1024 * 1024 * 1024),
    /**
     * Largest wire frame a member accepts from a client (the largest command is a little less:
     * maxCommandBytes). Peer frames may be larger, so one such command always fits in one APPEND
     * (maxPeerFrameBytes).
     */
    maxFrameBytes: z
      .number()
      .int()
      .min(1024, 'must be at least 1024 bytes')
      .max(256 * 1024 * 1024)
      .default(DEFAULT_MAX_FRAME_BYTES),
  })
  .strict();

export type MemberConfig = z.infer<typeof memberSchema>;
export type ClusterConfig = z.infer<typeof clusterConfigSchema>;
export type ClusterConfigInput = z.input<typeof clusterConfigSchema>;

export interface ConfigProblem {
  /** The field, as a path: `members[1].peerPort`, `leaderHeartbeatIntervalMs`. */
  readonly field: string;
  /** What is wrong and how to fix it. */
  readonly message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly problems: readonly ConfigProblem[],
    readonly source?: string,
  ) {
    super(
      `${source ? `${source}: ` : ''}invalid cluster configuration:\n${problems.map((p) => `  - ${p.field}: ${p.message}`).join('\n')}`,
    );
  }
}

const fieldPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    '',
  ) || '(root)';

/** Stands in for members that did not parse, so the rules between the other fields still run. */
const PLACEHOLDER_MEMBERS = [{ id: 0, host: '127.0.0.1', clientPort: 1, peerPort: 2 }];

/**
 * Every problem of `input`: each field's own, then the rules between the fields that parsed (a field
 * that did not parse, or is in `unusable`, is left out of them rather than hiding them).
 */
const configProblems = (
  input: unknown,
  unusable: ReadonlySet<string> = new Set(),
): { config?: ClusterConfig; problems: ConfigProblem[] } => {
  const parsed = clusterConfigSchema.safeParse(input, { reportInput: true });
  if (parsed.success) return { config: parsed.data, problems: crossFieldRules(parsed.data, unusable) };
  const problems = parsed.error.issues.map((issue) => ({
    field: fieldPath(issue.path),
    message: describeIssue(issue),
  }));
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { problems };
  const bad = new Set(unusable);
  const unknown = new Set<string>();
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') for (const key of issue.keys) unknown.add(key);
    else if (issue.path.length > 0) bad.add(String(issue.path[0]));
  }
  const rest = Object.fromEntries(
    Object.entries(input).filter(([key]) => !bad.has(key) && !unknown.has(key)),
  );
  const fallback = clusterConfigSchema.safeParse(
    bad.has('members') ? { ...rest, members: PLACEHOLDER_MEMBERS } : rest,
  );
  if (fallback.success) problems.push(...crossFieldRules(fallback.data, bad));
  return { problems };
};

/** Validate an already-parsed object (from JSON or code). Throws ConfigError listing every problem. */
export const validateClusterConfig = (input: unknown, source?: string): ClusterConfig => {
  const { config, problems } = configProblems(input);
  if (config === undefined || problems.length > 0) throw new ConfigError(problems, source);
  return config;
};

const describeIssue = (issue: z.core.$ZodIssue): string => {
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}: remove ${issue.keys.length > 1 ? 'them' : 'it'} or check the spelling (see \`npx chorus config schema\`)`;
  }
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return `is missing: add it (a ${issue.expected})`;
    if (issue.expected === 'int') return issue.message;
    const got = typeof issue.input === 'object' ? JSON.stringify(issue.input) : JSON.stringify(issue.input);
    return `expected a ${issue.expected}, got ${got}`;
  }
  return issue.message;
};

/**
 * Parse Aeron's compact members string: `0,host:clientPort:peerPort|1,host:clientPort:peerPort|...`.
 */
export const parseMembersString = (text: string): MemberConfig[] => {
  const problems: ConfigProblem[] = [];
  const members: MemberConfig[] = [];
  const parts = text.trim().split('|');
  parts.forEach((part, i) => {
    const field = `members[${i}]`;
    const match = /^\s*(\d+)\s*,\s*(\[[^\]]+\]|[^:\s,]+)\s*:\s*(\d+)\s*:\s*(\d+)\s*$/.exec(part);
    if (!match) {
      problems.push({
        field,
        message: `"${part}" is not of the form id,host:clientPort:peerPort (for example 0,127.0.0.1:9000:9100)`,
      });
      return;
    }
    const host = match[2].startsWith('[') ? match[2].slice(1, -1) : match[2];
    members.push({ id: Number(match[1]), host, clientPort: Number(match[3]), peerPort: Number(match[4]) });
  });
  if (problems.length > 0) throw new ConfigError(problems, 'members string');
  return members;
};

/** Format members back into the compact string (the inverse of parseMembersString). */
export const formatMembersString = (members: readonly MemberConfig[]): string =>
  members
    .map((m) => `${m.id},${m.host.includes(':') ? `[${m.host}]` : m.host}:${m.clientPort}:${m.peerPort}`)
    .join('|');

/**
 * Load a cluster configuration file (JSON). Its `members` may be an array or a compact members string.
 */
export const loadClusterConfig = (file: string): ClusterConfig => {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(cause);
    throw new ConfigError([{ field: '(file)', message: `cannot read ${file}: ${reason}` }], file);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(
      [{ field: '(file)', message: `not valid JSON (${(cause as Error).message}); fix the syntax` }],
      file,
    );
  }
  let config = resolveClusterConfig(raw, file);
  // Every path in a file is relative to that file, wherever the member is started from: the data
  // directory (also its default, ./data), the services module and the peer secret file.
  config = { ...config, dir: resolve(dirname(file), config.dir) };
  if (config.services !== undefined && !isAbsolute(config.services) && !/^[a-z]+:/.test(config.services))
    config = { ...config, services: resolve(dirname(file), config.services) };
  // The peer secret file is checked (readable, 0600, well-formed) now rather than at start.
  const auth = config.peerAuthentication;
  if (auth && 'secretFile' in auth) {
    config = { ...config, peerAuthentication: { secretFile: resolve(dirname(file), auth.secretFile) } };
    peerSecrets(config, file);
  }
  return config;
};

/**
 * The cluster's peer secrets, first the one that signs (read from `peerAuthentication.secretFile`, one
 * per line, or given inline); [] for a configuration without peers. A ConfigError names the field and
 * the fix for a missing, unreadable, world- or group-readable, or malformed file.
 */
export const peerSecrets = (config: ClusterConfig, source?: string): Buffer[] => {
  const auth = config.peerAuthentication;
  if (!auth) return [];
  if ('secrets' in auth) return auth.secrets.map((secret) => Buffer.from(secret, 'utf8'));
  const field = 'peerAuthentication.secretFile';
  const refuse = (message: string): never => {
    throw new ConfigError([{ field, message }], source);
  };
  let mode = 0;
  let text = '';
  try {
    mode = statSync(auth.secretFile).mode & 0o777;
    text = readFileSync(auth.secretFile, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    refuse(
      code === 'ENOENT'
        ? `${auth.secretFile} does not exist: create it with 32 random bytes in base64 (e.g. \`openssl rand -base64 32 > peer-secret && chmod 600 peer-secret\`)`
        : `cannot read ${auth.secretFile} (${code ?? String(cause)}): make it readable by the member's user`,
    );
  }
  if ((mode & 0o077) !== 0) {
    refuse(
      `${auth.secretFile} is readable by other users (mode ${mode.toString(8).padStart(4, '0')}): \`chmod 600 ${auth.secretFile}\``,
    );
  }
  const secrets = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (secrets.length === 0) refuse(`${auth.secretFile} holds no secret: write one per line`);
  const short = secrets.findIndex((secret) => secret.length < 32);
  if (short >= 0) {
    refuse(
      `line ${short + 1} of ${auth.secretFile} is shorter than 32 characters: use 32 random bytes in base64`,
    );
  }
  return secrets.map((secret) => Buffer.from(secret, 'utf8'));
};

/** Bytes an APPEND adds around its entries (header, term, indexes, msgpack keys, each entry's fields). */
const APPEND_ENVELOPE_BYTES = 1024;
/** Payload bytes the consensus module packs into one APPEND before starting another (past one entry). */
export const MAX_APPEND_BATCH_BYTES = 64 * 1024;

/** The largest log entry payload a peer may send: a command with its session message header. */
export const maxEntryPayloadBytes = (config: Pick<ClusterConfig, 'maxFrameBytes'>): number =>
  maxCommandBytes(config) + CLIENT_ENVELOPE_BYTES;

/**
 * The largest peer frame: an APPEND of one entry as large as maxEntryPayloadBytes, or a batch of small
 * ones (MAX_APPEND_BATCH_BYTES of payload; each entry's fields cost at most as much again), with the
 * APPEND's own fields; an INSTALL_SNAPSHOT must fit the same bound.
 */
export const maxPeerFrameBytes = (config: Pick<ClusterConfig, 'maxFrameBytes'>): number =>
  Math.max(maxEntryPayloadBytes(config), 2 * MAX_APPEND_BATCH_BYTES) + APPEND_ENVELOPE_BYTES;

/** Accept `members` as an array or a compact members string, then validate everything. */
export const resolveClusterConfig = (raw: unknown, source?: string): ClusterConfig => {
  if (raw && typeof raw === 'object' && typeof (raw as { members?: unknown }).members === 'string') {
    let members: MemberConfig[] | null = null;
    let memberProblems: readonly ConfigProblem[] = [];
    try {
      members = parseMembersString((raw as { members: string }).members);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      memberProblems = error.problems;
    }
    if (members !== null) return validateClusterConfig({ ...(raw as object), members }, source);
    // A malformed string hides nothing else: the other fields are checked too, in the same report.
    const { problems } = configProblems(
      { ...(raw as object), members: PLACEHOLDER_MEMBERS },
      new Set(['members']),
    );
    throw new ConfigError([...memberProblems, ...problems], source);
  }
  return validateClusterConfig(raw, source);
};

/** The member with `id`, or a ConfigError naming the ids that exist. */
export const memberById = (config: ClusterConfig, id: number): MemberConfig => {
  const member = config.members.find((m) => m.id === id);
  if (!member) {
    throw new ConfigError([
      {
        field: '--id',
        message: `no member ${id} in the configuration (members: ${config.members.map((m) => m.id).join(', ')})`,
      },
    ]);
  }
  return member;
};

/** The JSON Schema of a cluster configuration file, for editors. */
export const clusterConfigJsonSchema = (): object =>
  z.toJSONSchema(
    clusterConfigSchema.extend({ members: z.union([z.array(memberSchema).min(1), z.string()]) }),
    {
      io: 'input',
    },
  );

/**
 * The base URL of a member's admin HTTP listener (`http://host:port`), or null when it has none. A listener
 * bound to a wildcard address is reached at the member's host.
 */
export const adminHttpUrl = (config: ClusterConfig, member: MemberConfig): string | null => {
  if (member.adminHttpPort === undefined) return null;
  const bind = config.adminHttp.host;
  const host = bind === '0.0.0.0' || bind === '::' ? member.host : bind;
  return `http://${host.includes(':') ? `[${host}]` : host}:${member.adminHttpPort}`;
};
