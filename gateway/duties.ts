// What a gateway must hold: party → the epoch and endpoint of the assignment it was given. Pure: the
// orders the registry pushes, the duty lists it answers REGISTER and SYNC with, and the lease running out
// change it; the connections (connections.ts) follow it. Every order is idempotent by epoch: an order
// older than one already seen for its party changes nothing, and the same order twice is the same as once.

import type { Duty, Order } from './messages.ts';

export interface Wanted {
  readonly epoch: number;
  readonly endpoint: string;
}

export class Duties {
  /** The parties to hold open, and at which assignment. */
  private readonly wanted = new Map<string, Wanted>();
  /** The highest epoch seen per party, in any order or duty list: anything older is stale. */
  private readonly seen = new Map<string, number>();

  /** What to hold now (a copy). */
  get want(): ReadonlyMap<string, Wanted> {
    return new Map(this.wanted);
  }

  /** The parties the registry asked to close at these epochs, to report CLOSED once nothing older is held. */
  readonly closed: { party: string; epoch: number }[] = [];

  private fresh(party: string, epoch: number): boolean {
    const seen = this.seen.get(party);
    if (seen !== undefined && epoch < seen) return false;
    this.seen.set(party, epoch);
    return true;
  }

  /** A pushed OPEN or CLOSE. False when it was stale (older than what this gateway already saw). */
  apply(order: Order): boolean {
    if (!this.fresh(order.party, order.epoch)) return false;
    if (order.type === 'OPEN') this.wanted.set(order.party, { epoch: order.epoch, endpoint: order.endpoint });
    else this.close(order.party, order.epoch);
    return true;
  }

  /**
   * A duty list (REGISTER's or SYNC's answer) is the registry's whole view of this gateway at the time it
   * was applied: a party it does not list as OPEN is closed, whatever was held before.
   */
  sync(duties: readonly Duty[]): void {
    const listed = new Set<string>();
    for (const duty of duties) {
      listed.add(duty.party);
      if (!this.fresh(duty.party, duty.epoch)) continue;
      if (duty.action === 'OPEN' && duty.endpoint !== undefined) {
        this.wanted.set(duty.party, { epoch: duty.epoch, endpoint: duty.endpoint });
      } else this.close(duty.party, duty.epoch);
    }
    for (const party of [...this.wanted.keys()]) if (!listed.has(party)) this.wanted.delete(party);
  }

  /** Ownership can no longer be confirmed (the lease ran out): hold nothing until the next duty list. */
  dropAll(): void {
    this.wanted.clear();
  }

  /** The CLOSED reports due (taken once). */
  takeClosed(): { party: string; epoch: number }[] {
    return this.closed.splice(0);
  }

  private close(party: string, epoch: number): void {
    const held = this.wanted.get(party);
    if (held && held.epoch <= epoch) this.wanted.delete(party);
    this.closed.push({ party, epoch });
  }
}
