// The circuit breaker's memory: the sliding-window minimum and maximum of trade prices (monotonic deques,
// O(1) amortised), and the band a trade may print in.

export type Sample = [timestamp: number, price: number];

export class PriceWindow {
  constructor(
    /** Decreasing prices: the front is the window's maximum. */
    public maxQueue: Sample[] = [],
    /** Increasing prices: the front is the window's minimum. */
    public minQueue: Sample[] = [],
    public last: number | null = null,
  ) {}

  record(timestamp: number, price: number): void {
    while (this.maxQueue.length > 0 && this.maxQueue[this.maxQueue.length - 1][1] <= price)
      this.maxQueue.pop();
    this.maxQueue.push([timestamp, price]);
    while (this.minQueue.length > 0 && this.minQueue[this.minQueue.length - 1][1] >= price)
      this.minQueue.pop();
    this.minQueue.push([timestamp, price]);
    this.last = price;
  }

  reset(timestamp: number, price: number): void {
    this.maxQueue = [];
    this.minQueue = [];
    this.record(timestamp, price);
  }

  /** The prices a trade may print at now, or null when there is no reference yet. */
  band(now: number, windowMs: number, bandTicks: number): [low: number, high: number] | null {
    if (this.last === null) return null;
    const oldest = now - windowMs;
    while (this.maxQueue.length > 0 && this.maxQueue[0][0] < oldest) this.maxQueue.shift();
    while (this.minQueue.length > 0 && this.minQueue[0][0] < oldest) this.minQueue.shift();
    const max = Math.max(this.last, this.maxQueue[0]?.[1] ?? this.last);
    const min = Math.min(this.last, this.minQueue[0]?.[1] ?? this.last);
    return [max - bandTicks, min + bandTicks];
  }
}
