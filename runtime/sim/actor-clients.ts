// The actor workload: real clients pipelining commands (several in flight per session, as applications
// do) to the example counters and the order book on the actor runtime's shards. BUSY answers (suspend,
// leadership transfer, back-pressure) make each command's resend wait its own jittered delay, so one
// session's commands reach the log out of order — the case that lost commands in issue 10.
//
// What must hold, checked from the replies: every INCREMENT (by 1) applies at most once and is never
// lost once acknowledged — two acknowledged increments of one counter never report the same count, and
// at the end each counter's value lies between its acknowledged increments and those plus the ones of
// unknown outcome — and none is refused (nothing about it is invalid, so a refusal drops a command).

import { unpack } from 'msgpackr';
import { counterService } from '../../examples/counter-service.ts';
import type { ChorusClient, CommandOutcome } from '../client/client.ts';
import { type Answered, type ClientHost, startClients, type Workload } from './clients.ts';
import { SIM_INSTRUMENT, simOrdersService } from './services.ts';

export const COUNTERS = ['a', 'b', 'c'];

/** What the replies say about one counter. */
export interface CounterTally {
  /** Increments acknowledged (applied, by the reply). */
  acked: number;
  /** Increments whose outcome is unknown (no reply in time, or the cluster could not tell). */
  unknown: number;
  /** Increments sent and not answered yet. */
  pending: number;
  /** The counts acknowledged increments reported. */
  readonly counts: Set<number>;
}

/** A broken rule seen in a reply: `invariant` names it, `detail` says what. */
export type ReplyProblem = (invariant: string, detail: string) => void;

export class ActorWorkload implements Workload {
  issued = 0;
  completed = 0;
  readonly answered: Answered[] = [];
  readonly tallies = new Map<string, CounterTally>(
    COUNTERS.map((id) => [id, { acked: 0, unknown: 0, pending: 0, counts: new Set<number>() }]),
  );
  private active = true;
  private closed = false;
  private readonly clients: ChorusClient[];
  private readonly inFlight: number[];
  private orders = 0;

  constructor(
    private readonly host: ClientHost,
    count: number,
    commandTimeoutMs: number,
    private readonly problem: ReplyProblem,
    private readonly depth = 4,
  ) {
    this.clients = startClients(host, { count, commandTimeoutMs, maxInFlight: depth });
    this.inFlight = this.clients.map(() => 0);
  }

  start(): void {
    for (let i = 0; i < this.clients.length; i++)
      for (let slot = 0; slot < this.depth; slot++) this.next(i, this.host.rng.int(0, 50));
  }

  setActive(active: boolean): void {
    const wasActive = this.active;
    this.active = active;
    if (active && !wasActive)
      for (let i = 0; i < this.clients.length; i++)
        for (let slot = this.inFlight[i]; slot < this.depth; slot++) this.next(i, this.host.rng.int(0, 20));
  }

  close(): void {
    this.closed = true;
    this.active = false;
  }

  /** One slot of the client's window issues its next command after `delay`. */
  private next(client: number, delay: number): void {
    this.host.schedule(delay, () => {
      if (this.active && !this.closed && this.inFlight[client] < this.depth) this.issue(client);
    });
  }

  private issue(client: number): void {
    const rng = this.host.rng;
    const call = this.host.now();
    this.inFlight[client]++;
    this.issued++;
    if (rng.chance(0.8)) {
      const id = rng.pick(COUNTERS);
      const body = counterService.commandBody({ type: 'INCREMENT', id, by: 1 });
      (this.tallies.get(id) as CounterTally).pending++;
      this.clients[client].submit(body, (outcome) => this.incremented(client, id, call, outcome));
      return;
    }
    const body = simOrdersService.commandBody({
      type: 'NEW_ORDER',
      instrument: SIM_INSTRUMENT,
      account: `c${client}`,
      clientOrderId: `o${client}-${++this.orders}`,
      side: rng.chance(0.5) ? 'BUY' : 'SELL',
      price: rng.int(95, 105),
      quantity: rng.int(1, 10),
      // Mostly immediate-or-cancel, so the book stays small (its state is compared after every apply).
      timeInForce: rng.chance(0.8) ? 'IOC' : 'GTC',
    });
    this.clients[client].submit(body, (outcome) => this.ordered(client, call, outcome));
  }

  private incremented(client: number, id: string, call: number, outcome: CommandOutcome): void {
    const tally = this.tallies.get(id) as CounterTally;
    tally.pending--;
    if ('error' in outcome) tally.unknown++;
    else {
      const reply = unpack(outcome.reply) as { ok: boolean; value?: unknown; error?: { code: string } };
      // An increment by 1 of a named counter is always valid: nothing may refuse it (a refusal of a
      // command sent once is a lost command — issue 10's "DUPLICATE: already applied").
      if (!reply.ok) this.refused(`INCREMENT of counter ${id} refused: ${JSON.stringify(reply.error)}`);
      if (reply.ok) {
        const count = reply.value as number;
        if (tally.counts.has(count))
          this.problem(
            'ACKNOWLEDGED_COMMAND_LOST',
            `two acknowledged increments of counter ${id} both reported count ${count}`,
          );
        tally.counts.add(count);
        tally.acked++;
        this.answer(call);
      }
    }
    this.settled(client);
  }

  private refused(detail: string): void {
    if (!this.closed) this.problem('COMMAND_REFUSED', detail);
  }

  private ordered(client: number, call: number, outcome: CommandOutcome): void {
    if ('reply' in outcome) this.answer(call);
    this.settled(client);
  }

  private answer(call: number): void {
    if (this.closed) return;
    this.completed++;
    this.answered.push({ call, ret: this.host.now() });
  }

  private settled(client: number): void {
    this.inFlight[client]--;
    // Some think time: about as many commands a second as the KV workload's (each costs more to apply).
    this.next(client, this.host.rng.int(5, 60));
  }
}
