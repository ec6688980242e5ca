// The simulated KV clients: each runs one operation at a time through a member, resends to another
// member when no answer comes (same correlation id: the service's de-duplication applies it once),
// follows a leader hint on a refusal, gives up after a while (outcome unknown), and records every
// operation in the history the linearizability check reads.

import { encodeKvCommand, type KvResult } from '../../actors/services/kv.ts';
import type { Random } from '../../machines/random.ts';
import type { HistoryOperation, KvInput } from './kv-history.ts';
import type { NetworkConditions } from './simulation.ts';

export type ClientEvent =
  | {
      kind: 'request';
      to: number;
      client: number;
      correlationId: number;
      lowestAwaited: number;
      payload: Uint8Array;
    }
  | {
      kind: 'response';
      client: number;
      correlationId: number;
      result: KvResult | null;
      leaderHint: number | null;
    }
  | { kind: 'client'; client: number; token: number }
  | { kind: 'script'; run: () => void };

/** What the clients need from the simulation: its clock, generator, network and event queue. */
export interface ClientHost {
  readonly rng: Random;
  readonly memberIds: readonly number[];
  now(): number;
  network(): NetworkConditions;
  delay(): number;
  schedule(delay: number, event: ClientEvent): void;
}

interface Client {
  readonly id: number;
  readonly sessionId: number;
  target: number;
  nextCorrelation: number;
  op: { correlationId: number; record: HistoryOperation; giveUpAt: number; token: number } | null;
  token: number;
  active: boolean;
  completed: number;
}

const CLIENT_RETRY_MS = 150;
const KEYS = ['x', 'y', 'z'];
const FIRST_SESSION = 1000;

export class KvClients {
  readonly history: HistoryOperation[] = [];
  private readonly clients: Client[] = [];
  /** Client-to-member links cut (`client>member`): a partition can cut clients off too. */
  private readonly blocked = new Set<string>();

  constructor(
    private readonly host: ClientHost,
    count: number,
    private readonly opTimeoutMs: number,
  ) {
    for (let i = 0; i < count; i++) {
      this.clients.push({
        id: i,
        sessionId: FIRST_SESSION + i,
        target: host.rng.pick(host.memberIds),
        nextCorrelation: 1,
        op: null,
        token: 0,
        active: true,
        completed: 0,
      });
    }
  }

  get ids(): number[] {
    return this.clients.map((c) => c.id);
  }

  sessionOf(client: number): number {
    return this.clients[client].sessionId;
  }

  /** The client of a session id, or null (not one of the simulated clients). */
  ofSession(sessionId: number): number | null {
    const client = sessionId - FIRST_SESSION;
    return client >= 0 && client < this.clients.length ? client : null;
  }

  block(client: number, member: number): void {
    this.blocked.add(`${client}>${member}`);
  }

  unblockAll(): void {
    this.blocked.clear();
  }

  setActive(active: boolean): void {
    for (const client of this.clients) {
      const wasActive = client.active;
      client.active = active;
      if (active && !wasActive && client.op === null) this.scheduleClient(client, this.host.rng.int(0, 20));
    }
  }

  start(): void {
    for (const client of this.clients) this.scheduleClient(client, this.host.rng.int(0, 50));
  }

  get completedOps(): number {
    return this.clients.reduce((n, c) => n + c.completed, 0);
  }

  /** Close out operations still pending: their outcome is unknown. */
  close(): void {
    for (const client of this.clients) {
      client.op = null;
      client.active = false;
    }
  }

  private scheduleClient(client: Client, delay: number): void {
    client.token++;
    this.host.schedule(delay, { kind: 'client', client: client.id, token: client.token });
  }

  /** A member answers a client (a result, or a refusal with a leader hint). */
  reply(
    from: number,
    client: number,
    correlationId: number,
    result: KvResult | null,
    leaderHint: number | null,
  ): void {
    const { dropRate } = this.host.network();
    if (dropRate > 0 && this.host.rng.chance(dropRate)) return;
    if (this.blocked.has(`${client}>${from}`)) return;
    this.host.schedule(this.host.delay(), { kind: 'response', client, correlationId, result, leaderHint });
  }

  private sendRequest(client: Client): void {
    const op = client.op;
    if (!op) return;
    const payload = encodeKvCommand(op.record.input);
    const request: ClientEvent = {
      kind: 'request',
      to: client.target,
      client: client.id,
      correlationId: op.correlationId,
      lowestAwaited: op.correlationId,
      payload,
    };
    const cut = this.blocked.has(`${client.id}>${client.target}`);
    if (!cut && !(this.host.network().dropRate > 0 && this.host.rng.chance(this.host.network().dropRate))) {
      this.host.schedule(this.host.delay(), request);
      const late = this.host.network().lateResendRate ?? 0;
      // A resend stuck in a queue: it arrives after the client has moved on to newer commands.
      if (late > 0 && this.host.rng.chance(late)) this.host.schedule(this.host.rng.int(300, 2000), request);
    }
    this.scheduleClient(client, CLIENT_RETRY_MS);
  }

  private newInput(client: Client): KvInput {
    const key = this.host.rng.pick(KEYS);
    const roll = this.host.rng.float();
    const value = `c${client.id}-${client.nextCorrelation}`;
    if (roll < 0.3) return { op: 'get', key };
    if (roll < 0.7) return { op: 'put', key, value };
    const expected = this.host.rng.chance(0.3) ? null : this.lastValueFor(key);
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

  onTimer(id: number, token: number): void {
    const client = this.clients[id];
    if (token !== client.token) return;
    if (client.op === null) {
      if (!client.active) return;
      const correlationId = client.nextCorrelation++;
      const input = this.newInput(client);
      const record: HistoryOperation = {
        clientId: id,
        input,
        call: this.host.now(),
        ret: null,
        output: null,
      };
      this.history.push(record);
      client.op = { correlationId, record, giveUpAt: this.host.now() + this.opTimeoutMs, token: 0 };
      this.sendRequest(client);
      return;
    }
    if (this.host.now() >= client.op.giveUpAt) {
      // Unknown outcome: the history keeps ret = null; the client moves on.
      client.op = null;
      if (client.active) this.scheduleClient(client, this.host.rng.int(1, 20));
      return;
    }
    // No answer in time: try another member with the same correlation id (dedup applies it once).
    client.target = this.host.rng.pick(this.host.memberIds);
    this.sendRequest(client);
  }

  onResponse(id: number, correlationId: number, result: KvResult | null, leaderHint: number | null): void {
    const client = this.clients[id];
    const op = client.op;
    if (!op || op.correlationId !== correlationId) return;
    if (result === null) {
      client.target = leaderHint ?? this.host.rng.pick(this.host.memberIds);
      client.token++;
      const token = client.token;
      this.host.schedule(this.host.rng.int(5, 25), {
        kind: 'script',
        run: () => {
          if (client.token === token && client.op === op) this.sendRequest(client);
        },
      });
      return;
    }
    op.record.ret = this.host.now();
    op.record.output = result;
    client.op = null;
    client.completed++;
    if (client.active) this.scheduleClient(client, this.host.rng.int(0, 10));
  }
}
