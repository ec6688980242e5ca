// The matching core's data structure (see matching.ts for the layout and why): orders as an intrusive
// doubly linked FIFO per price level, and each side's levels in an array sorted so the best is last, plus
// a Map from price to level.

import type { Side } from './types.ts';

export class Order {
  prev: Order | null = null;
  next: Order | null = null;
  level: Level | null = null;
  openQty: number;
  filledQty = 0;

  constructor(
    readonly id: number,
    readonly account: string,
    readonly clientOrderId: string,
    readonly sessionId: number,
    readonly side: Side,
    readonly isMarket: boolean,
    public price: number,
    public quantity: number,
    readonly postOnly: boolean,
  ) {
    this.openQty = quantity;
  }
}

export class Level {
  head: Order | null = null;
  tail: Order | null = null;
  /** Sum of the open quantity of the orders queued here. */
  qty = 0;
  count = 0;

  constructor(readonly price: number) {}
}

export class BookSide {
  /** Levels sorted so the best is last: ascending prices for bids, descending for asks. */
  readonly sorted: Level[] = [];
  readonly byPrice = new Map<number, Level>();
  /** +1 for bids, -1 for asks: `sign * price` ascends along `sorted`. */
  private readonly sign: number;

  constructor(readonly isBid: boolean) {
    this.sign = isBid ? 1 : -1;
  }

  best(): Level | undefined {
    return this.sorted[this.sorted.length - 1];
  }

  levelFor(price: number): Level {
    let level = this.byPrice.get(price);
    if (level !== undefined) return level;
    level = new Level(price);
    this.byPrice.set(price, level);
    const arr = this.sorted;
    const n = arr.length;
    if (n === 0 || this.sign * arr[n - 1].price < this.sign * price) arr.push(level);
    else arr.splice(this.position(price), 0, level);
    return level;
  }

  removeLevel(level: Level): void {
    this.byPrice.delete(level.price);
    const arr = this.sorted;
    const n = arr.length;
    if (arr[n - 1] === level) {
      arr.pop();
      return;
    }
    arr.splice(this.position(level.price), 1);
  }

  /** Where `price` is or would go in `sorted` (binary search: the first level not before it). */
  private position(price: number): number {
    const arr = this.sorted;
    const key = this.sign * price;
    let lo = 0;
    let hi = arr.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sign * arr[mid].price < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
