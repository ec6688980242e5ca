// The simulator's event queue: a binary min-heap on (time, seq), so events at the same virtual time
// run in the order they were scheduled and a seed replays exactly.

export interface Queued<E> {
  time: number;
  seq: number;
  event: E;
}

/** A binary min-heap on (time, seq). */
export class EventQueue<E> {
  private heap: Queued<E>[] = [];
  get size(): number {
    return this.heap.length;
  }
  peekTime(): number {
    return this.heap.length > 0 ? this.heap[0].time : Number.POSITIVE_INFINITY;
  }
  push(item: Queued<E>): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): Queued<E> | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop() as Queued<E>;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l], h[m])) m = l;
        if (r < h.length && less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
const less = <E>(a: Queued<E>, b: Queued<E>): boolean =>
  a.time < b.time || (a.time === b.time && a.seq < b.seq);
