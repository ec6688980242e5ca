// A gateway process (`chorus gateway --config FILE`) started from this one, with its log records: what the
// gateway specs and `chorus bench gateways` run real gateways with (as runtime/local-cluster.ts runs
// members). Also the registry service as a services module, for a local cluster's `services` field.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeServiceReply } from '../runtime/actor-runtime/service-client.ts';
import { chorusCommand, moduleUrl } from '../runtime/build-kind.ts';
import type { ChorusClient } from '../runtime/client/client.ts';
import type { GatewayConfigInput } from './config.ts';
import { registryCommand } from './messages.ts';

/** The registry service as a services module (a path, not an import: gateway/ imports nothing from actors/). */
export const REGISTRY_MODULE = fileURLToPath(
  moduleUrl('../actors/services/gateway-registry/service', import.meta.url),
);

/** One log record of a gateway process, with when the test process read it. */
export interface GatewayRecord {
  readonly at: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export class GatewayProcess {
  readonly records: GatewayRecord[] = [];
  private child: ChildProcess | null = null;
  /** How the last process exited (null while it runs, or if a signal ended it). */
  exitCode: number | null = null;
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
    const [command, ...args] = chorusCommand();
    const child = spawn(command, [...args, 'gateway', '--config', this.configFile], {
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
      child.once('exit', (code) => {
        this.exitCode = code;
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
