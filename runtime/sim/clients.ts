// The simulated clients: real client libraries (runtime/client/client.ts: the connection statechart,
// leader search, session resume, resends, BUSY back-off, silence detection) over the simulated client
// network. The KV workload runs one operation at a time per client and records every operation in the
// history the linearizability check reads; a command with no reply in time, or whose outcome the
// cluster cannot tell, stays in the history with an unknown outcome.

import { unpack } from 'msgpackr';
import { encodeKvCommand } from '../../actors/services/kv.ts';
import type { Random } from '../../machines/random.ts';
import { ChorusClient, type CommandOutcome } from '../client/client.ts';
import type { ClientTransport } from '../client/client-transport.ts';
import { endpointOf } from './client-network.ts';
import type { HistoryOperation, KvInput, KvOutput } from './kv-history.ts';

/** What the clients need from the simulation. */
export interface ClientHost {
  readonly rng: Random;
  readonly memberIds: readonly number[];
  now(): number;
  schedule(ms: number, run: () => void): void;
  transportFor(client: number): ClientTransport;
}

export interface ClientSettings {
  readonly count: number;
  /** A command with no reply in this long is given up (outcome unknown). */
  readonly commandTimeoutMs: number;
  /** Commands one client keeps in flight. */
  readonly maxInFlight: number;
}

/** Start `count` real clients on the simulated network, each with its own seed. */
export const startClients = (host: ClientHost, settings: ClientSettings): ChorusClient[] =>
  Array.from({ length: settings.count }, (_, i) =>
    ChorusClient.start({
      endpoints: host.memberIds.map(endpointOf),
      seed: host.rng.uint32(),
      transport: host.transportFor(i),
      commandTimeoutMs: settings.commandTimeoutMs,
      maxInFlight: settings.maxInFlight,
    }),
  );

/** A workload: clients issuing commands, recording what they see. */
export interface Workload {
  start(): void;
  setActive(active: boolean): void;
  /** Commands issued. */
  readonly issued: number;
  /** Commands answered. */
  readonly completed: number;
  /** When each answered command was issued and answered, in answer order. */
  readonly answered: readonly Answered[];
  /** Stop issuing; what is still pending keeps an unknown outcome. */
  close(): void;
}

export interface Answered {
  readonly call: number;
  readonly ret: number;
}

/** The first answer at or after `time` (null: none). */
export const firstAnswerAfter = (answered: readonly Answered[], time: number): number | null => {
  let first: number | null = null;
  for (const op of answered) if (op.ret >= time && (first === null || op.ret < first)) first = op.ret;
  return first;
};

const KEYS = ['x', 'y', 'z'];

/** Get, put and compare-and-set on three keys, one at a time per client; every operation in `history`. */
export class KvWorkload implements Workload {
  readonly history: HistoryOperation[] = [];
  readonly answered: Answered[] = [];
  completed = 0;
  private active = true;
  private closed = false;
  /** The client libraries, by client number. */
  readonly clients: readonly ChorusClient[];
  private readonly busy: boolean[];

  constructor(
    private readonly host: ClientHost,
    count: number,
    commandTimeoutMs: number,
  ) {
    this.clients = startClients(host, { count, commandTimeoutMs, maxInFlight: 1 });
    this.busy = this.clients.map(() => false);
  }

  get issued(): number {
    return this.history.length;
  }

  start(): void {
    for (let i = 0; i < this.clients.length; i++) this.next(i, this.host.rng.int(0, 50));
  }

  setActive(active: boolean): void {
    const wasActive = this.active;
    this.active = active;
    if (active && !wasActive)
      for (let i = 0; i < this.clients.length; i++) this.next(i, this.host.rng.int(0, 20));
  }

  close(): void {
    this.closed = true;
    this.active = false;
  }

  private next(client: number, delay: number): void {
    this.host.schedule(delay, () => {
      if (!this.active || this.closed || this.busy[client]) return;
      this.busy[client] = true;
      const input = this.newInput(client);
      const record: HistoryOperation = {
        clientId: client,
        input,
        call: this.host.now(),
        ret: null,
        output: null,
      };
      this.history.push(record);
      this.clients[client].submit(encodeKvCommand(input), (outcome) => this.done(client, record, outcome));
    });
  }

  private done(client: number, record: HistoryOperation, outcome: CommandOutcome): void {
    this.busy[client] = false;
    if (!this.closed && 'reply' in outcome) {
      const output = unpack(outcome.reply) as KvOutput | { refused: string };
      // A refusal was not applied; like an unknown outcome, it constrains nothing.
      if (!('refused' in output)) {
        record.ret = this.host.now();
        record.output = output;
        this.completed++;
        this.answered.push({ call: record.call, ret: record.ret });
      }
    }
    this.next(client, this.host.rng.int(0, 10));
  }

  private newInput(client: number): KvInput {
    const rng = this.host.rng;
    const key = rng.pick(KEYS);
    const roll = rng.float();
    const value = `c${client}-${this.history.length}`;
    if (roll < 0.3) return { op: 'get', key };
    if (roll < 0.7) return { op: 'put', key, value };
    const expected = rng.chance(0.3) ? null : this.lastValueFor(key);
    return { op: 'cas', key, expected, value };
  }

  private lastValueFor(key: string): string | null {
    for (let i = this.history.length - 1; i >= 0 && i >= this.history.length - 20; i--) {
      const h = this.history[i];
      if (h.input.key !== key) continue;
      if (h.input.op !== 'get') return h.input.value;
      if (h.output && 'value' in h.output) return h.output.value;
    }
    return null;
  }
}
