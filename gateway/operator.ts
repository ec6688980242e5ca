// The operator's side of `chorus gateway`: plan, apply, explain and status as commands to the cluster's
// gateway registry, and the stand-in as a process. A rules file goes as its text: the registry checks it
// (the rules engine lives with the registry under actors/, which gateway/ does not import) and refuses it
// naming every problem by its path, before anything is applied.

import { readFileSync } from 'node:fs';
import { decodeServiceReply } from '../runtime/actor-runtime/service-client.ts';
import { ChorusClient } from '../runtime/client/client.ts';
import { type ClusterFlags, GatewayCliError } from './cli.ts';
import { formatAnswer } from './format.ts';
import { registryCommand } from './messages.ts';
import { StandIn } from './stand-in.ts';

export type OperatorCommand =
  | { readonly kind: 'plan'; readonly rules: string }
  | { readonly kind: 'apply'; readonly rules: string; readonly ifVersion: number | undefined }
  | { readonly kind: 'explain'; readonly party: string }
  | { readonly kind: 'status' };

const USAGE = 2;
const FAILURE = 1;

/** A rules file's text (the registry parses and checks it, naming every problem by its path). */
export const readRules = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new GatewayCliError(`${file}: cannot read it (${(error as Error).message})`, USAGE);
  }
};

const endpointsOf = (flags: ClusterFlags): string[] => {
  const list = flags.endpoints ?? process.env.CHORUS_ENDPOINTS;
  if (!list) {
    throw new GatewayCliError('give the cluster with --endpoints host:port,... (or CHORUS_ENDPOINTS)', USAGE);
  }
  return list.split(',').map((e) => e.trim());
};

const credentialsOf = (flags: ClusterFlags): string | undefined => {
  if (flags.credentialsFile) {
    try {
      return readFileSync(flags.credentialsFile, 'utf8').trim();
    } catch (error) {
      throw new GatewayCliError(`--credentials-file: ${(error as Error).message}`, USAGE);
    }
  }
  return flags.credentials ?? process.env.CHORUS_CREDENTIALS;
};

const commandOf = (command: OperatorCommand): { type: string } & Record<string, unknown> => {
  switch (command.kind) {
    case 'plan':
      return { type: 'PLAN', rules: readRules(command.rules) };
    case 'apply':
      return {
        type: 'APPLY_RULES',
        rules: readRules(command.rules),
        ...(command.ifVersion === undefined ? {} : { ifVersion: command.ifVersion }),
      };
    case 'explain':
      return { type: 'EXPLAIN', party: command.party };
    case 'status':
      return { type: 'STATUS' };
  }
};

/** A refusal inside an answer (`{ refused }` or `{ error }`), if any. */
const refusalOf = (value: unknown): string | null => {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as { refused?: unknown; error?: unknown };
  if (v.refused !== undefined) return typeof v.refused === 'string' ? v.refused : JSON.stringify(v.refused);
  if (v.error !== undefined) return typeof v.error === 'string' ? v.error : JSON.stringify(v.error);
  return null;
};

/** Send one registry command and print its answer (human: YAML-like; --json: the answer as JSON). */
export const runOperatorCommand = async (command: OperatorCommand, flags: ClusterFlags): Promise<number> => {
  const body = registryCommand(commandOf(command)); // a bad rules file fails before any connection
  const credentials = credentialsOf(flags);
  const client = await ChorusClient.connect({
    endpoints: endpointsOf(flags),
    ...(credentials === undefined ? {} : { credentials }),
    maxAttempts: 10,
    commandTimeoutMs: 10_000,
  }).catch((error: Error) => {
    throw new GatewayCliError(`cannot reach the cluster: ${error.message}`, FAILURE);
  });
  try {
    const reply = decodeServiceReply(await client.send(body));
    if (!reply.ok) {
      throw new GatewayCliError(
        `${command.kind} refused: ${reply.error.code}: ${reply.error.message}`,
        FAILURE,
      );
    }
    const refusal = refusalOf(reply.value);
    if (flags.json) process.stdout.write(`${JSON.stringify(reply.value, null, 2)}\n`);
    else if (refusal === null) process.stdout.write(formatAnswer(command.kind, reply.value));
    if (refusal !== null) {
      process.stderr.write(`chorus gateway: ${command.kind} refused: ${refusal}\n`);
      return FAILURE;
    }
    return 0;
  } finally {
    await client.close().catch(() => {});
  }
};

/** `chorus gateway stand-in`: runs until SIGINT/SIGTERM, printing each connection event. */
export const runStandIn = async (options: {
  host: string;
  port: number;
  livenessMs?: number;
  json?: boolean;
}): Promise<number> => {
  const standIn = await StandIn.start({
    host: options.host,
    port: options.port,
    ...(options.livenessMs === undefined ? {} : { livenessMs: options.livenessMs }),
  });
  const print = (event: string, fields: Record<string, unknown>, text: string) =>
    process.stdout.write(options.json ? `${JSON.stringify({ event, ...fields })}\n` : `${text}\n`);
  print(
    'listening',
    { endpoint: standIn.endpoint, livenessMs: standIn.livenessMs },
    `stand-in listening on ${standIn.endpoint}`,
  );
  standIn.on('open', (r) =>
    print('open', { ...r }, `open   ${r.party} epoch ${r.epoch} by ${r.gateway} (#${r.id})`),
  );
  standIn.on('close', (r) =>
    print(
      'close',
      { ...r },
      `close  ${r.party} epoch ${r.epoch} by ${r.gateway} (#${r.id}, ended by ${r.closedBy})`,
    ),
  );
  standIn.on('overlap', (o) =>
    print(
      'overlap',
      { party: o.party, connections: o.connections.map((c) => c.id) },
      `TWO LIVE CONNECTIONS for ${o.party}: #${o.connections[0].id} (${o.connections[0].gateway}) and #${o.connections[1].id} (${o.connections[1].gateway})`,
    ),
  );
  standIn.on('refused', (problem) => print('refused', { problem }, `refused: ${problem}`));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await standIn.close();
  return standIn.overlaps.length === 0 ? 0 : FAILURE;
};
