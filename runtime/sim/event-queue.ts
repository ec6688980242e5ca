// The simulator's event queue: a min-heap on (time, seq), so events at the same virtual time run in the
// order they were scheduled and a seed replays exactly.

import { MinHeap } from '../../actors/consensus/min-heap.ts';

export interface Queued<E> {
  time: number;
  seq: number;
  event: E;
}

const less = <E>(a: Queued<E>, b: Queued<E>): boolean =>
  a.time < b.time || (a.time === b.time && a.seq < b.seq);

export class EventQueue<E> {
  private readonly heap = new MinHeap<Queued<E>>(less);

  get size(): number {
    return this.heap.size;
  }

  peekTime(): number {
    return this.heap.peek()?.time ?? Number.POSITIVE_INFINITY;
  }

  push(item: Queued<E>): void {
    this.heap.push(item);
  }

  pop(): Queued<E> | undefined {
    return this.heap.pop();
  }
}
