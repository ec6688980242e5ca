// A small seeded pseudo-random generator (sfc32, seeded through splitmix32), pure and portable.
// Chorus never calls Math.random in machines/ or actors/: every random choice (nomination delay,
// a simulator's fault schedule, a benchmark's workload) comes from one of these, so a seed
// reproduces a run exactly. The whole generator state is four 32-bit words, so it can live in a
// machine's context and be snapshotted.

export type RandomState = readonly [number, number, number, number];

const splitmix32 = (seed: number): (() => number) => {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
};

export const seedRandom = (seed: number): RandomState => {
  const next = splitmix32(seed);
  return [next(), next(), next(), next() | 1];
};

/** One step: a uniform 32-bit unsigned value and the next state (pure). */
export const nextUint32 = (state: RandomState): [number, RandomState] => {
  let [a, b, c, d] = state;
  const t = (((a + b) >>> 0) + d) >>> 0;
  d = (d + 1) >>> 0;
  a = b ^ (b >>> 9);
  b = (c + (c << 3)) >>> 0;
  c = ((c << 21) | (c >>> 11)) >>> 0;
  c = (c + t) >>> 0;
  return [t, [a >>> 0, b >>> 0, c, d]];
};

/**
 * Exponential backoff with "equal jitter": half of min(max, base·2^attempt) is fixed, the other half
 * is uniform, so retries never bunch at zero yet still spread out. Pure: returns the next generator.
 * The one backoff in Chorus: the client's connection machine and the peer network's redials use it.
 */
export const backoffDelay = (
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: RandomState,
): [number, RandomState] => {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  const [value, next] = nextUint32(random);
  const half = ceiling / 2;
  return [Math.round(half + (value / 0x100000000) * half), next];
};

/** A mutable generator over the same algorithm, for shells, simulators and benchmarks. */
export class Random {
  private state: RandomState;

  constructor(seed: number | RandomState) {
    this.state = typeof seed === 'number' ? seedRandom(seed) : seed;
  }

  /** The generator's state, to carry in a snapshot or a log entry. */
  snapshot(): RandomState {
    return this.state;
  }

  uint32(): number {
    const [value, next] = nextUint32(this.state);
    this.state = next;
    return value;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.uint32() / 0x100000000;
  }

  /** An integer in [min, max] inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Random.pick: no items to pick from');
    return items[this.int(0, items.length - 1)];
  }

  /** A new independent generator derived from this one (for a sub-component of a simulation). */
  fork(): Random {
    return new Random(this.uint32());
  }
}
