// A gateway's configuration file (`chorus gateway --config FILE`, JSON or YAML): who it is (name,
// capabilities, labels, capacity), how it reaches the cluster, and its timing. Checked before anything
// starts; every problem is named with its field. Paths are relative to the file.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

import { MAX_CLOSE_ON_DISCONNECT_MS, MIN_CLOSE_ON_DISCONNECT_MS } from '../runtime/client/client-options.ts';

const ms = z.number().int().positive();

/** How often the gateway checks its lease and its cluster connection (gateway.ts). */
export const GUARD_EVERY_MS = 25;

/**
 * When its cluster connection is lost, the gateway drops every party connection after this share of
 * closeOnDisconnectMs unless its session was resumed by then. The leader closes the session no sooner than
 * closeOnDisconnectMs after it saw the connection close; the gateway sees the same close at most one delivery
 * later, and drops within a guard period after the share: the rest is margin for delivery, the guard's period,
 * event-loop stalls and the two clocks' rates (docs/gateways.md, "Losing the cluster connection").
 */
export const DISCONNECT_DROP_SHARE = 0.25;

export const DEFAULT_CLOSE_ON_DISCONNECT_MS = 400;

/** The least closeOnDisconnectMs a gateway takes: the margin left after the share must cover 6 guard periods. */
export const MIN_GATEWAY_CLOSE_ON_DISCONNECT_MS = Math.max(
  MIN_CLOSE_ON_DISCONNECT_MS,
  Math.ceil((6 * GUARD_EVERY_MS) / (1 - DISCONNECT_DROP_SHARE)),
);

/**
 * The default lease as a share of the session timeout. The session cannot close before sessionTimeoutMs
 * after the cluster received the gateway's last answered command, which was sent at or after the moment
 * the lease counts from; the fifth left over is margin for the two clocks' rates and the gateway's own
 * event loop (its check runs every 25 ms).
 */
export const LEASE_SHARE = 0.8;

export const gatewayConfigSchema = z
  .strictObject({
    name: z.string().min(1).max(200),
    capabilities: z.array(z.string().min(1)).default([]),
    labels: z.record(z.string(), z.string()).default({}),
    capacity: z.number().int().positive(),
    /** The members' client endpoints (host:port). */
    endpoints: z.array(z.string().regex(/:\d{1,5}$/, 'must be host:port')).min(1),
    /** A shared token, inline or in a file (`chorus cluster up` writes DIR/client-token). */
    credentials: z.string().optional(),
    credentialsFile: z.string().optional(),
    /**
     * The cluster's sessionTimeoutMs. The registry can give this gateway's parties to another only after its
     * session closed, at the earliest this long after the cluster last heard from it; the gateway keeps a
     * connection only while its last confirmed command is younger than leaseMs, which must stay below it.
     */
    sessionTimeoutMs: ms.default(10_000),
    /** How long ownership stays confirmed after a command the cluster answered (default 0.8 × the session timeout). */
    leaseMs: ms.optional(),
    /** How often the gateway re-reads its duties with SYNC (default a sixth of the session timeout). */
    syncIntervalMs: ms.optional(),
    /**
     * Asked of the cluster with every CONNECT: the leader closes this gateway's session (its parties then move)
     * once its connection has been gone this long with no resume — a SIGKILLed gateway's parties move in about
     * this much instead of a session timeout. The gateway drops its own connections after DISCONNECT_DROP_SHARE
     * of it unless it resumed by then. Opt-in (absent by default): across a cluster leader kill this fast path
     * once let a gateway reopen a stale assignment while the party was already open elsewhere (issue 13, open);
     * DEFAULT_CLOSE_ON_DISCONNECT_MS is the value measured with it.
     */
    closeOnDisconnectMs: z
      .number()
      .int()
      .min(MIN_GATEWAY_CLOSE_ON_DISCONNECT_MS)
      .max(MAX_CLOSE_ON_DISCONNECT_MS)
      .optional(),
    /** Heartbeat on every party connection (default 300 ms; the remote end's liveness window must exceed it). */
    heartbeatMs: ms.default(300),
    /** Opening a party connection, and closing it in order, each get this long. */
    connectionTimeoutMs: ms.default(2_000),
  })
  .superRefine((c, ctx) => {
    const lease = c.leaseMs ?? Math.floor(c.sessionTimeoutMs * LEASE_SHARE);
    if (lease >= c.sessionTimeoutMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['leaseMs'],
        message: `leaseMs (${lease}) must be below sessionTimeoutMs (${c.sessionTimeoutMs}): ownership must lapse before the cluster can move a party`,
      });
    }
    const sync = c.syncIntervalMs ?? c.sessionTimeoutMs / 6;
    if (sync >= lease) {
      ctx.addIssue({
        code: 'custom',
        path: ['syncIntervalMs'],
        message: `syncIntervalMs (${sync}) must be below leaseMs (${lease}), or the lease lapses between syncs`,
      });
    }
    if (c.closeOnDisconnectMs !== undefined && c.closeOnDisconnectMs >= c.sessionTimeoutMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['closeOnDisconnectMs'],
        message: `closeOnDisconnectMs (${c.closeOnDisconnectMs}) must be below sessionTimeoutMs (${c.sessionTimeoutMs}), or it never acts first`,
      });
    }
    if (c.credentials !== undefined && c.credentialsFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['credentialsFile'],
        message: 'give credentials or credentialsFile, not both',
      });
    }
  });

export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;

export interface GatewayConfig extends Omit<z.output<typeof gatewayConfigSchema>, 'credentialsFile'> {
  readonly leaseMs: number;
  readonly syncIntervalMs: number;
  /** DISCONNECT_DROP_SHARE × closeOnDisconnectMs: how long the gateway keeps its parties without a cluster connection. */
  readonly disconnectDropMs: number;
}

export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
}

/** Check a configuration (parsed JSON/YAML); `baseDir` resolves credentialsFile. Throws GatewayConfigError listing every problem. */
export const resolveGatewayConfig = (
  input: unknown,
  baseDir = process.cwd(),
  source = 'gateway config',
): GatewayConfig => {
  const parsed = gatewayConfigSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new GatewayConfigError(`${source}:\n${lines.join('\n')}`);
  }
  const { credentialsFile, ...config } = parsed.data;
  let credentials = config.credentials;
  if (credentialsFile !== undefined) {
    const path = resolve(baseDir, credentialsFile);
    try {
      credentials = readFileSync(path, 'utf8').trim();
    } catch (error) {
      throw new GatewayConfigError(
        `${source}:\n  credentialsFile: cannot read ${path} (${(error as Error).message})`,
      );
    }
  }
  return {
    ...config,
    ...(credentials === undefined ? {} : { credentials }),
    leaseMs: config.leaseMs ?? Math.floor(config.sessionTimeoutMs * LEASE_SHARE),
    syncIntervalMs: config.syncIntervalMs ?? Math.floor(config.sessionTimeoutMs / 6),
    // Without closeOnDisconnectMs (the default) a lost cluster connection alone drops nothing: the lease does.
    disconnectDropMs:
      config.closeOnDisconnectMs === undefined
        ? Number.POSITIVE_INFINITY
        : Math.floor(config.closeOnDisconnectMs * DISCONNECT_DROP_SHARE),
  };
};

/** Read and check a configuration file (JSON or YAML). */
export const loadGatewayConfig = (file: string): GatewayConfig => {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new GatewayConfigError(`${file}: cannot read it (${(error as Error).message})`);
  }
  let input: unknown;
  try {
    input = parseYaml(text); // YAML is a superset of JSON
  } catch (error) {
    throw new GatewayConfigError(`${file}: not JSON or YAML (${(error as Error).message})`);
  }
  return resolveGatewayConfig(input, dirname(path), file);
};
