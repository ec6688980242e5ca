// The determinism check. Chorus replays every actor from its log on every member, so a transition must
// depend on nothing but its state and its event: no clock, no randomness, no promise, timer or I/O.
// While a step runs, Date.now / new Date() / performance.now, Math.random / crypto.randomUUID /
// crypto.getRandomValues are tripwires, and an async hook sees any promise, timer or I/O request the step
// creates. The machine's named actions, guards and delays (those given to `setup()`) are wrapped so a
// tripwire names the one it was in; for inline code, the stack line of the user's code that made the call
// (with its function name) says where. The first call fails the step with a NondeterminismError.

import { createHook } from 'node:async_hooks';
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

const ASYNC_KINDS: Record<string, string> = {
  PROMISE: 'started a promise',
  Timeout: 'started a timer (setTimeout or setInterval)',
  Immediate: 'called setImmediate',
  TickObject: 'called process.nextTick',
  Microtask: 'called queueMicrotask',
};

/** Runs steps with tripwires set; names whose code tripped them. */
export class DeterminismGuard {
  private readonly within: string[] = [];
  private trip: Trip | undefined;
  private armed = false;
  private readonly hook = createHook({
    init: (_id, type) => {
      if (this.armed) this.record(ASYNC_KINDS[type] ?? `started asynchronous work (${type})`);
    },
  });

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

  /** Run one step with the tripwires set; throws if the step read the clock, randomness or went async. */
  run<T>(where: string, body: () => T): T {
    const real = {
      now: Date.now,
      Date: globalThis.Date,
      performanceNow: performance.now,
      random: Math.random,
      randomUUID: globalThis.crypto?.randomUUID,
      getRandomValues: globalThis.crypto?.getRandomValues,
    };
    const record = (call: string) => this.record(call);
    class TrippedDate extends real.Date {
      constructor(...args: unknown[]) {
        if (args.length === 0) record('called new Date()');
        super(...(args as [number]));
      }
      static override now = (): number => {
        record('read Date.now()');
        return real.now();
      };
    }
    this.trip = undefined;
    globalThis.Date = TrippedDate as DateConstructor;
    performance.now = () => {
      record('read performance.now()');
      return real.performanceNow.call(performance);
    };
    Math.random = () => {
      record('read Math.random()');
      return real.random();
    };
    if (globalThis.crypto) {
      globalThis.crypto.randomUUID = () => {
        record('called crypto.randomUUID()');
        return real.randomUUID.call(globalThis.crypto);
      };
      globalThis.crypto.getRandomValues = <A extends ArrayBufferView | null>(array: A): A => {
        record('called crypto.getRandomValues()');
        return real.getRandomValues.call(globalThis.crypto, array as never) as unknown as A;
      };
    }
    this.armed = true;
    this.hook.enable();
    let result: T;
    try {
      result = body();
    } finally {
      this.hook.disable();
      this.armed = false;
      globalThis.Date = real.Date;
      performance.now = real.performanceNow;
      Math.random = real.random;
      if (globalThis.crypto) {
        globalThis.crypto.randomUUID = real.randomUUID;
        globalThis.crypto.getRandomValues = real.getRandomValues;
      }
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
    const armed = this.armed;
    this.armed = false; // the stack capture below must not trip the hook
    const { xstate, line } = caller();
    if (!xstate) this.trip = { call, within: this.within.at(-1), at: line };
    this.armed = armed;
  }
}
