// Helpers for the gateway process tests and `chorus bench gateways`: a real gateway process
// (`chorus gateway --config FILE`) with its log records, and an operator's client for the registry.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayConfigInput } from '../../gateway/config.ts';
import { registryCommand } from '../../gateway/messages.ts';
import { decodeServiceReply } from '../../runtime/actor-runtime/service-client.ts';
import type { ChorusClient } from '../../runtime/client/client.ts';

const CHORUS = fileURLToPath(new URL('../../bin/chorus.js', import.meta.url));
/** The registry service as a services module, for a cluster's `services` field. */
export const REGISTRY_MODULE = fileURLToPath(
  new URL('../../actors/services/gateway-registry/service.ts', import.meta.url),
);

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

/** One log record of a gateway process, with when the test process read it. */
export interface GatewayRecord {
  readonly at: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export class GatewayProcess {
  readonly records: GatewayRecord[] = [];
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly name: string,
    readonly configFile: string,
  ) {}

  /** Write the gateway's configuration file and start its process. */
  static start(config: GatewayConfigInput): GatewayProcess {
    const dir = mkdtempSync(join(tmpdir(), `chorus-gateway-${config.name}-`));
    const file = join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    const gateway = new GatewayProcess(config.name, file);
    gateway.spawn();
    return gateway;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  spawn(): void {
    const child = spawn(process.execPath, [CHORUS, 'gateway', '--config', this.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let record: Record<string, unknown>;
        try {
          record = JSON.parse(line);
        } catch {
          record = { msg: line };
        }
        this.records.push({ ...record, msg: String(record.msg ?? ''), at: performance.now() });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        if (this.child === child) this.child = null;
        resolve();
      }),
    );
  }

  /** Send a signal; for SIGKILL, SIGTERM and SIGINT resolve once the process has exited. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT') await this.exited;
  }

  /** The records from index `from` on whose msg matches. */
  find(pattern: RegExp, from = 0): GatewayRecord[] {
    return this.records.slice(from).filter((r) => pattern.test(r.msg));
  }
}

/** Send a command to the registry; the answer's value (throws on a refusal of any kind). */
export const registry = async (client: ChorusClient, command: { type: string } & Record<string, unknown>) => {
  const reply = decodeServiceReply(await client.send(registryCommand(command)));
  if (!reply.ok) throw new Error(`${command.type}: ${reply.error.code}: ${reply.error.message}`);
  const value = reply.value as { refused?: unknown } | null;
  if (value && typeof value === 'object' && 'refused' in value) {
    throw new Error(`${command.type} refused: ${String(value.refused)}`);
  }
  return reply.value;
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
