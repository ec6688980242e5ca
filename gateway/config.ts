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

export const DEFAULT_CLOSE_ON_DISCONNECT_MS = 400;

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
     * this much instead of a session timeout. In exchange the gateway drops its party connections the moment
     * its own cluster connection is lost, until its session is back. Default DEFAULT_CLOSE_ON_DISCONNECT_MS;
     * null turns it off (the session timeout alone then moves a lost gateway's parties, and a lost cluster
     * connection drops nothing by itself: the lease does).
     */
    closeOnDisconnectMs: z
      .number()
      .int()
      .min(MIN_CLOSE_ON_DISCONNECT_MS)
      .max(MAX_CLOSE_ON_DISCONNECT_MS)
      .nullable()
      .default(DEFAULT_CLOSE_ON_DISCONNECT_MS),
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
    if (c.closeOnDisconnectMs !== null && c.closeOnDisconnectMs >= c.sessionTimeoutMs) {
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

export interface GatewayConfig
  extends Omit<z.output<typeof gatewayConfigSchema>, 'credentialsFile' | 'closeOnDisconnectMs'> {
  /** Absent when turned off (null in the file). */
  readonly closeOnDisconnectMs?: number;
  readonly leaseMs: number;
  readonly syncIntervalMs: number;
  /** Drop every party connection the moment the cluster connection is lost (on with closeOnDisconnectMs). */
  readonly dropOnDisconnect: boolean;
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
  const { credentialsFile, closeOnDisconnectMs, ...config } = parsed.data;
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
    ...(closeOnDisconnectMs === null ? {} : { closeOnDisconnectMs }),
    leaseMs: config.leaseMs ?? Math.floor(config.sessionTimeoutMs * LEASE_SHARE),
    syncIntervalMs: config.syncIntervalMs ?? Math.floor(config.sessionTimeoutMs / 6),
    dropOnDisconnect: closeOnDisconnectMs !== null,
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
