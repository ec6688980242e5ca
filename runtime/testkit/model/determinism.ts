// The determinism check. Chorus replays every actor from its log on every member, so a transition must
// depend on nothing but its state and its event: no clock, no randomness, no promise, timer or I/O.
// While a step runs, Date.now / new Date() / performance.now, Math.random / crypto.randomUUID /
// crypto.getRandomValues, the timer and microtask functions are tripwires, and V8's promise hook sees
// any promise the step creates (an async function's too). The machine's named actions, guards and delays
// (those given to `setup()`) are wrapped so a tripwire names the one it was in; for inline code, the
// stack line of the user's code that made the call (with its function name) says where. The first call
// fails the step with a NondeterminismError. A call whose nearest caller is XState itself (its scheduler
// stamps Date.now() on a delayed event) is XState's bookkeeping, not the machine's.

import { promiseHooks } from 'node:v8';
import type { AnyStateMachine } from 'xstate';
import { NondeterminismError } from './errors.ts';

interface Trip {
  readonly call: string;
  readonly within: string | undefined;
  readonly at: string | undefined;
}

const frames = (): string[] => {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 60;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return stack
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '))
    .map((line) => line.slice(3).replace('file://', '').replaceAll(`${process.cwd()}/`, ''));
};

const TESTKIT = /runtime\/testkit\/model\//;
const XSTATE = /node_modules\/xstate\//;

/** Whose call it was: XState's own bookkeeping (its scheduler stamps Date.now()) is not the machine's. */
const caller = (): { readonly xstate: boolean; readonly line: string | undefined } => {
  const outside = frames().filter((frame) => !TESTKIT.test(frame) && !frame.includes('(node:'));
  const user = outside.find((frame) => !/node_modules|<anonymous>/.test(frame));
  return { xstate: outside[0] !== undefined && XSTATE.test(outside[0]), line: user };
};

/** What a step may not call: [object, property, what the error says it did]. */
const TRIPWIRES: readonly (readonly [object, string, string])[] = [
  [performance, 'now', 'read performance.now()'],
  [Math, 'random', 'read Math.random()'],
  [globalThis.crypto, 'randomUUID', 'called crypto.randomUUID()'],
  [globalThis.crypto, 'getRandomValues', 'called crypto.getRandomValues()'],
  [globalThis, 'setTimeout', 'started a timer (setTimeout)'],
  [globalThis, 'setInterval', 'started a timer (setInterval)'],
  [globalThis, 'setImmediate', 'called setImmediate'],
  [globalThis, 'queueMicrotask', 'called queueMicrotask'],
  [process, 'nextTick', 'called process.nextTick'],
];

const RealDate = Date;
let onDate: ((call: string) => void) | undefined;

/** Date while a step runs: `new Date()` and `Date.now()` trip; a given time does not. */
class TrippedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) onDate?.('called new Date()');
    super(...(args as [number]));
  }
  static override now(): number {
    onDate?.('read Date.now()');
    return RealDate.now();
  }
}

/** Set every tripwire to call `trip`; returns what puts the originals back. */
const install = (trip: (call: string) => void): (() => void) => {
  const originals = TRIPWIRES.map(([target, key]) => (target as Record<string, unknown>)[key]);
  TRIPWIRES.forEach(([target, key, call], index) => {
    const original = originals[index] as (...args: unknown[]) => unknown;
    if (typeof original !== 'function') return;
    (target as Record<string, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
      trip(call);
      return original.apply(this, args);
    };
  });
  const before = { date: globalThis.Date, onDate };
  onDate = trip;
  globalThis.Date = TrippedDate as DateConstructor;
  // Any promise, an async function's included.
  const stopPromises = promiseHooks.onInit(() => trip('started a promise'));
  return () => {
    stopPromises();
    globalThis.Date = before.date;
    onDate = before.onDate;
    TRIPWIRES.forEach(([target, key], index) => {
      if (typeof originals[index] === 'function') (target as Record<string, unknown>)[key] = originals[index];
    });
  };
};

/** Runs steps with tripwires set; names whose code tripped them. */
export class DeterminismGuard {
  private readonly within: string[] = [];
  private trip: Trip | undefined;
  private armed = false;

  /** The machine with its named actions, guards and delays wrapped to say whose code is running. */
  instrument<M extends AnyStateMachine>(machine: M): M {
    const {
      actions = {},
      guards = {},
      delays = {},
    } = machine.implementations as {
      actions?: Record<string, unknown>;
      guards?: Record<string, unknown>;
      delays?: Record<string, unknown>;
    };
    const wrap = <T>(kind: string, name: string, implementation: T): T => {
      if (typeof implementation !== 'function') return implementation;
      const label = `${kind} '${name}'`;
      const run = <R>(body: () => R): R => {
        this.within.push(label);
        try {
          return body();
        } finally {
          this.within.pop();
        }
      };
      const plain = implementation as (...args: unknown[]) => unknown;
      const wrapped = (...args: unknown[]) => run(() => plain(...args));
      // A built-in action (assign, raise, emit, enqueueActions...) is resolved, then executed, by XState:
      // keep its properties and wrap those two.
      const builtin = implementation as unknown as Record<string, unknown>;
      Object.assign(wrapped, builtin);
      for (const phase of ['resolve', 'execute']) {
        const original = builtin[phase];
        if (typeof original === 'function') {
          (wrapped as unknown as Record<string, unknown>)[phase] = (...args: unknown[]) =>
            run(() => (original as (...a: unknown[]) => unknown)(...args));
        }
      }
      return wrapped as T;
    };
    const wrapAll = (kind: string, table: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(table).map(([name, value]) => [name, wrap(kind, name, value)]));
    return machine.provide({
      actions: wrapAll('action', actions),
      guards: wrapAll('guard', guards),
      delays: wrapAll('delay', delays),
    } as never) as M;
  }

  /**
   * Set the tripwires for a whole path (setting them per step costs more than the step: V8 drops code
   * optimised for the built-ins); they record only while `run` runs a step.
   */
  watch<T>(body: () => T): T {
    const restore = this.setTripwires();
    try {
      return body();
    } finally {
      restore();
    }
  }

  /** `watch` for a span that awaits (a TestCluster's run): the tripwires stay set until the returned call. */
  setTripwires(): () => void {
    return install((call) => {
      if (this.armed) this.record(call);
    });
  }

  /** Run one step (inside `watch`); throws if the step read the clock or randomness, or went async. */
  run<T>(where: string, body: () => T): T {
    this.trip = undefined;
    this.armed = true;
    let result: T;
    try {
      result = body();
    } finally {
      this.armed = false;
    }
    const trip = this.trip as Trip | undefined;
    if (trip) {
      const whose = trip.within ?? 'an inline action, guard or delay of the machine';
      throw new NondeterminismError(
        `${whose} ${trip.call} ${where}${trip.at ? `, in ${trip.at}` : ''}. ` +
          'A Chorus machine must be deterministic: every member replays it from the log. Take time from ' +
          "the event (the entry's cluster time), randomness from a seed in the event or context, and leave " +
          'I/O to the runtime (decide it in state; the leader performs it).',
      );
    }
    return result;
  }

  private record(call: string): void {
    if (this.trip) return;
    this.armed = false; // capturing the stack must not trip anything
    const { xstate, line } = caller();
    if (!xstate) this.trip = { call, within: this.within.at(-1), at: line };
    this.armed = true;
  }
}
