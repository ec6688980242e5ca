// The nemesis's workloads, through the real client library: several sessions, each with several
// commands in flight. Every command is recorded with its session, its correlation id (the client numbers
// a session's commands 1, 2, 3... in the order `send` is called), when it was sent, and the reply bytes
// the application got, or why it got none. The checks compare these with the members' logs.
//
// - kv: the built-in KV service — get, put and cas on a few shared keys (a register per key), with
//   unique values, so the history can be checked for linearizability.
// - actors: the counters of examples/counter-service.ts (INCREMENT) and an order book (NEW_ORDER and
//   CANCEL_ORDER by clientOrderId), hosted by runtime/nemesis/services.ts.

import { unpack as decodeMsgpack } from 'msgpackr';
import { encodeKvCommand, type KvCommand } from '../../actors/services/kv.ts';
import { Random } from '../../machines/random.ts';
import { ChorusClient, SessionClosedError } from '../client/client.ts';
import { counterService, NEMESIS_INSTRUMENT, nemesisOrdersService } from './services.ts';

export type WorkloadName = 'kv' | 'actors';
export type ServiceName = 'kv' | 'counters' | 'orders';

export interface CommandRecord {
  readonly client: number;
  readonly sessionId: number;
  readonly correlationId: number;
  readonly service: ServiceName;
  /** The command as the workload wrote it. */
  readonly input: Record<string, unknown>;
  /** ms after the workload started. */
  readonly call: number;
  /** When the reply came (ms after the workload started); null: no reply (outcome unknown or failed). */
  ret: number | null;
  /** The reply's bytes, exactly as the client library gave them to the application. */
  reply: Uint8Array | null;
  /** Why there was no reply (the error's name and message). */
  error: string | null;
}

export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  readonly sessions: number;
  readonly inFlight: number;
  readonly seed: number;
  /** Shared clock origin (performance.now() at the workload's start). */
  readonly origin: number;
  readonly commandTimeoutMs: number;
}

export const KV_KEYS = 6;
export const COUNTERS = 3;

/** Sessions sending commands until stopped; every command recorded. */
export class Workload {
  readonly records: CommandRecord[] = [];
  readonly clients: ChorusClient[] = [];
  /** Errors that ended a session (the session closed under it). */
  readonly sessionErrors: string[] = [];
  private stopped = false;
  /** When the latest reply came (ms after the workload started); -1 before any. */
  private lastReplyMs = -1;
  private loops: Promise<void>[] = [];
  private readonly sent: number[] = [];

  constructor(
    readonly name: WorkloadName,
    private readonly options: WorkloadOptions,
  ) {}

  now(): number {
    return performance.now() - this.options.origin;
  }

  async start(): Promise<void> {
    const { endpoints, sessions, seed, commandTimeoutMs } = this.options;
    for (let i = 0; i < sessions; i++) {
      this.clients.push(await ChorusClient.connect({ endpoints, commandTimeoutMs, seed: seed * 31 + i }));
      this.sent.push(0);
    }
    const random = new Random(seed ^ 0x776f726b);
    this.loops = this.clients.flatMap((_, client) =>
      Array.from({ length: this.options.inFlight }, (_, lane) =>
        this.loop(client, lane, random.fork()).catch((error: Error) => {
          this.sessionErrors.push(`client ${client}: ${error.message}`);
        }),
      ),
    );
  }

  /** Send one command on `client` and record it; resolves with the reply bytes or null. */
  async send(
    client: number,
    service: ServiceName,
    input: Record<string, unknown>,
    payload: Uint8Array,
  ): Promise<Uint8Array | null> {
    const c = this.clients[client];
    const sessionId = c.sessionId ?? -1;
    const record: CommandRecord = {
      client,
      sessionId,
      correlationId: ++this.sent[client],
      service,
      input,
      call: this.now(),
      ret: null,
      reply: null,
      error: null,
    };
    this.records.push(record);
    try {
      const reply = await c.send(payload);
      record.ret = this.now();
      this.lastReplyMs = record.ret;
      record.reply = reply;
      if (record.sessionId < 0) (record as { sessionId: number }).sessionId = c.sessionId ?? -1;
      return reply;
    } catch (error) {
      record.error = `${(error as Error).name}: ${(error as Error).message}`;
      if (error instanceof SessionClosedError) throw error;
      return null;
    }
  }

  private async loop(client: number, lane: number, random: Random): Promise<void> {
    let n = 0;
    const lastSeen = new Map<string, string | null>();
    const myOrders: string[] = [];
    while (!this.stopped) {
      n++;
      const tag = `c${client}l${lane}n${n}`;
      if (this.name === 'kv') {
        const key = `k${random.int(0, KV_KEYS - 1)}`;
        const roll = random.float();
        const command: KvCommand =
          roll < 0.4
            ? { op: 'get', key }
            : roll < 0.7
              ? { op: 'put', key, value: tag }
              : { op: 'cas', key, expected: lastSeen.get(key) ?? null, value: tag };
        const reply = await this.send(client, 'kv', command, encodeKvCommand(command));
        if (reply) {
          const result = unpackKv(reply);
          if ('value' in result) lastSeen.set(key, result.value);
          else if (result.ok && command.op !== 'get') lastSeen.set(key, command.value);
        }
      } else if (random.chance(0.5)) {
        const command = { type: 'INCREMENT', id: `n${random.int(0, COUNTERS - 1)}`, by: 1 };
        await this.send(client, 'counters', command, counterService.commandBody(command));
      } else {
        const account = `acct-${client}`;
        const cancel = myOrders.length > 0 && random.chance(0.3);
        const command = cancel
          ? {
              type: 'CANCEL_ORDER',
              instrument: NEMESIS_INSTRUMENT,
              account,
              clientOrderId: tag,
              origClientOrderId: myOrders.splice(random.int(0, myOrders.length - 1), 1)[0],
            }
          : {
              type: 'NEW_ORDER',
              instrument: NEMESIS_INSTRUMENT,
              account,
              clientOrderId: tag,
              side: random.chance(0.5) ? 'BUY' : 'SELL',
              price: random.int(990, 1010),
              quantity: random.int(1, 10),
            };
        const reply = await this.send(client, 'orders', command, nemesisOrdersService.commandBody(command));
        if (reply && !cancel) myOrders.push(tag);
      }
    }
  }

  /**
   * Resolves once some command is answered after `since` (ms after the workload started): the clients
   * are served again. Rejects if none is within `timeoutMs`.
   */
  async answeredAfter(since: number, timeoutMs: number): Promise<void> {
    const deadline = this.now() + timeoutMs;
    while (this.lastReplyMs <= since) {
      if (this.now() > deadline)
        throw new Error(`no command answered within ${timeoutMs} ms from ${(since / 1000).toFixed(1)} s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Stop sending and wait for the commands in flight to be answered (or to fail). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close().catch(() => {})));
  }
}

const unpackKv = (reply: Uint8Array): { value: string | null } | { ok: boolean } =>
  decodeMsgpack(reply) as { value: string | null } | { ok: boolean };

/**
 * The longest stretch (ms) without a successful command, within [from, to], and when it started. A
 * success is a reply the application got (any reply: the cluster answered).
 */
export const longestGap = (
  records: readonly CommandRecord[],
  from: number,
  to: number,
): { gapMs: number; startMs: number } => {
  const times = records
    .filter((r) => r.ret !== null)
    .map((r) => r.ret as number)
    .filter((t) => t >= from && t <= to)
    .sort((a, b) => a - b);
  let previous = from;
  let best = { gapMs: 0, startMs: from };
  for (const t of [...times, to]) {
    if (t - previous > best.gapMs) best = { gapMs: t - previous, startMs: previous };
    previous = t;
  }
  return best;
};
