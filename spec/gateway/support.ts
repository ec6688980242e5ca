// Helpers for the gateway process tests: the chorus CLI as a process or in this one, and the registry's
// STATUS. Real gateway processes and the registry module come from gateway/local-gateway.ts.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registry } from '../../gateway/local-gateway.ts';
import type { ChorusClient } from '../../runtime/client/client.ts';

export { GatewayProcess, REGISTRY_MODULE, registry } from '../../gateway/local-gateway.ts';

const CHORUS = fileURLToPath(new URL('../../bin/chorus.js', import.meta.url));

/** Run `chorus ARGS` as a process: its exit code and output. */
export const chorus = (args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, [CHORUS, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });

/**
 * `chorus gateway ARGS` in this process (what runtime/cli.ts hands over): its exit code and output. Far
 * cheaper than a process per command; `chorus` above covers the hand-over itself.
 */
export const gatewayCli = async (
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> => {
  const { runGatewayCli } = await import('../../gateway/cli.ts');
  const out = { stdout: '', stderr: '' };
  const write = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string) => {
    out.stdout += chunk;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => {
    out.stderr += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await runGatewayCli(args), ...out };
  } finally {
    process.stdout.write = write.stdout;
    process.stderr.write = write.stderr;
  }
};

export interface PartyStatus {
  readonly id: string;
  readonly owner: string | null;
  readonly state: string;
  readonly epoch: number;
}

export interface RegistryStatus {
  readonly rulesVersion: number;
  readonly gateways: { name: string; state: string; parties: number }[];
  readonly parties: PartyStatus[];
}

export const status = async (client: ChorusClient): Promise<RegistryStatus> =>
  (await registry(client, { type: 'STATUS' })) as RegistryStatus;
