// What a gateway must hold: party → the epoch and endpoint of the assignment it was given. Pure: the
// orders the registry pushes, the duty lists it answers REGISTER and SYNC with, and the lease running out
// change it; the connections (links.ts) follow it. Every order is idempotent by epoch: an order older
// than one already seen for its party changes nothing, and the same order twice is the same as once.
//
// An epoch this gateway ended — reported CLOSED or FAILED — is never opened again, whatever says so later.
// The registry moves on from it the moment that report lands (the party is assigned afresh, perhaps to
// another gateway, under a new epoch), while a duty list answered before the report landed still names it:
// a SYNC sent before the gateway dropped everything (its cluster connection lost during a leader change,
// say) and answered after its session resumed. Reopening from such a list was the two live connections of
// issue 13.

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
  /** The highest epoch per party this gateway ended (reported CLOSED or FAILED): never opened again. */
  private readonly ended = new Map<string, number>();

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

  /** This gateway ended the party's connection at `epoch` or a later one: that epoch is never opened again. */
  isEnded(party: string, epoch: number): boolean {
    return epoch <= (this.ended.get(party) ?? Number.NEGATIVE_INFINITY);
  }

  /**
   * A pushed OPEN or CLOSE. False when it was stale (older than what this gateway already saw) or is an
   * OPEN of an epoch it ended.
   */
  apply(order: Order): boolean {
    if (!this.fresh(order.party, order.epoch)) return false;
    if (order.type === 'CLOSE') this.close(order.party, order.epoch);
    else if (this.isEnded(order.party, order.epoch)) return false;
    else this.wanted.set(order.party, { epoch: order.epoch, endpoint: order.endpoint });
    return true;
  }

  /**
   * A duty list (REGISTER's or SYNC's answer) is the registry's whole view of this gateway at the time it
   * was applied: a party it does not list as OPEN is closed, whatever was held before. Returns the OPEN
   * duties of epochs this gateway ended: the registry had not yet heard so when it answered, and the
   * gateway says so again (their report may have been lost).
   */
  sync(duties: readonly Duty[]): Duty[] {
    const listed = new Set<string>();
    const endedButListed: Duty[] = [];
    for (const duty of duties) {
      listed.add(duty.party);
      if (!this.fresh(duty.party, duty.epoch)) continue;
      if (duty.action === 'CLOSE' || duty.endpoint === undefined) this.close(duty.party, duty.epoch);
      else if (this.isEnded(duty.party, duty.epoch)) endedButListed.push(duty);
      else this.wanted.set(duty.party, { epoch: duty.epoch, endpoint: duty.endpoint });
    }
    for (const party of [...this.wanted.keys()]) if (!listed.has(party)) this.wanted.delete(party);
    return endedButListed;
  }

  /** This gateway reported the party's connection at `epoch` CLOSED or FAILED: it is over for good. */
  end(party: string, epoch: number): void {
    this.ended.set(party, Math.max(epoch, this.ended.get(party) ?? Number.NEGATIVE_INFINITY));
    const held = this.wanted.get(party);
    if (held && held.epoch <= epoch) this.wanted.delete(party);
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
