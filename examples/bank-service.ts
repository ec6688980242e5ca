// The worked example of docs/services.md: bank accounts, each one an actor with a statechart.
//
//   OPEN    deposits, withdrawals (an overdraft is refused), transfers out, FREEZE, CLOSE (when empty)
//   FROZEN  deposits and credits only; an `after` delay (a cluster timer) unfreezes it
//   CLOSED  refuses everything; a credit that arrives is sent back to its sender as a REFUND
//
// A transfer is two actor-to-actor messages through the log: the sender debits itself and tells the
// receiver CREDIT (naming itself as `from`: every actor has its own address as `input`); a closed receiver
// answers REFUND. Money is conserved across leader changes because every message is a committed entry.
//
// Run it on a cluster: `npx chorus cluster up --services ./examples/bank-service.ts`. From a client:
//
//   const bank = serviceClient(await ChorusClient.connect({ endpoints, credentials }), bankService);
//   await bank.command({ type: 'DEPOSIT', account: 'alice', amount: 100 });   // → { ok: true, ... }
//   await bank.command({ type: 'TRANSFER', account: 'alice', to: 'bob', amount: 30 });

import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import {
  type ActorInput,
  defineService,
  type EventOrigin,
  emitFor,
  reply,
  tell,
} from '../actors/actor-runtime/service.ts';

export interface AccountContext {
  /** This account's id (its actor id), from the actor's input. */
  readonly id: string;
  balance: number;
  /** How long the pending (or last) freeze lasts, ms of cluster time. */
  frozenMs: number;
}

/** What an account accepts. `origin` is set by the runtime on every event (a session or an actor). */
export type AccountEvent = { origin?: EventOrigin } & (
  | { type: 'DEPOSIT'; amount: number }
  | { type: 'WITHDRAW'; amount: number }
  | { type: 'TRANSFER'; to: string; amount: number }
  | { type: 'FREEZE'; forMs: number }
  | { type: 'CLOSE' }
  | { type: 'GET' }
  /** From another account: money it sent. */
  | { type: 'CREDIT'; from: string; amount: number }
  /** From a closed account: money it would not take back. */
  | { type: 'REFUND'; amount: number }
);

export type Refusal = 'overdraft' | 'frozen' | 'closed' | 'not-empty' | 'same-account';

/** Every answer an account gives. */
export type BankReply =
  | { readonly ok: true; readonly state: string; readonly balance: number }
  | { readonly ok: false; readonly refused: Refusal; readonly balance: number };

/** The state an account shows (also what `GET` answers). */
const answer = (state: string, context: AccountContext): BankReply => ({
  ok: true,
  state,
  balance: context.balance,
});

// Reusable actions, written outside `setup()`: `emitFor` binds `emit` to the account's types.
const emitAccount = emitFor<AccountContext, AccountEvent>();
const refuse = (refused: Refusal) =>
  emitAccount(({ context }) => reply<BankReply>({ ok: false, refused, balance: context.balance }));
const answerIn = (state: string) => emitAccount(({ context }) => reply<BankReply>(answer(state, context)));

export const accountMachine = setup({
  types: { context: {} as AccountContext, events: {} as AccountEvent, input: {} as ActorInput },
  delays: {
    FREEZE: ({ context }) => context.frozenMs,
  },
  guards: {
    covered: ({ context, event }) =>
      (event.type === 'WITHDRAW' || event.type === 'TRANSFER') && event.amount <= context.balance,
    toItself: ({ context, event }) => event.type === 'TRANSFER' && event.to === context.id,
    empty: ({ context }) => context.balance === 0,
    /** Only actors send CREDIT and REFUND (a client cannot: the runtime stamps `origin`). */
    fromAnActor: ({ event }) => event.origin !== undefined && 'actor' in event.origin,
  },
}).createMachine({
  id: 'account',
  context: ({ input }) => ({ id: input.actorId, balance: 0, frozenMs: 0 }),
  initial: 'OPEN',
  on: {
    GET: {
      actions: emit(({ context, self }) =>
        reply<BankReply>(answer(String(self.getSnapshot().value), context)),
      ),
    },
    DEPOSIT: {
      actions: [
        assign({ balance: ({ context, event }) => context.balance + event.amount }),
        emit(({ context, self }) => reply<BankReply>(answer(String(self.getSnapshot().value), context))),
      ],
    },
    CREDIT: {
      guard: 'fromAnActor',
      actions: assign({ balance: ({ context, event }) => context.balance + event.amount }),
    },
    REFUND: {
      guard: 'fromAnActor',
      actions: assign({ balance: ({ context, event }) => context.balance + event.amount }),
    },
  },
  states: {
    OPEN: {
      on: {
        WITHDRAW: [
          {
            guard: 'covered',
            actions: [
              assign({ balance: ({ context, event }) => context.balance - event.amount }),
              answerIn('OPEN'),
            ],
          },
          { actions: refuse('overdraft') },
        ],
        TRANSFER: [
          { guard: 'toItself', actions: refuse('same-account') },
          {
            guard: 'covered',
            actions: [
              assign({ balance: ({ context, event }) => context.balance - event.amount }),
              // Typed by the receiver's events: a misspelt or missing field does not compile.
              emit(({ context, event }) =>
                tell<AccountEvent>('account', event.to, {
                  type: 'CREDIT',
                  from: context.id,
                  amount: event.amount,
                }),
              ),
              answerIn('OPEN'),
            ],
          },
          { actions: refuse('overdraft') },
        ],
        FREEZE: {
          target: 'FROZEN',
          actions: [assign({ frozenMs: ({ event }) => event.forMs }), answerIn('FROZEN')],
        },
        CLOSE: [
          { guard: 'empty', target: 'CLOSED', actions: answerIn('CLOSED') },
          { actions: refuse('not-empty') },
        ],
      },
    },
    FROZEN: {
      // A cluster timer: its expiry is a log entry, so it fires once, on every member alike.
      after: { FREEZE: 'OPEN' },
      on: {
        WITHDRAW: { actions: refuse('frozen') },
        TRANSFER: { actions: refuse('frozen') },
        CLOSE: { actions: refuse('frozen') },
        FREEZE: { actions: answerIn('FROZEN') },
      },
    },
    CLOSED: {
      on: {
        DEPOSIT: { actions: refuse('closed') },
        WITHDRAW: { actions: refuse('closed') },
        TRANSFER: { actions: refuse('closed') },
        FREEZE: { actions: refuse('closed') },
        CLOSE: { actions: answerIn('CLOSED') },
        CREDIT: {
          guard: 'fromAnActor',
          actions: emit(({ event }) =>
            tell<AccountEvent>('account', event.from, { type: 'REFUND', amount: event.amount }),
          ),
        },
      },
    },
  },
});

const account = z.string().min(1, 'name the account').max(64);
const amount = z.number().int('whole cents').positive('a positive amount');

export const bankService = defineService({
  name: 'bank',
  actors: { account: accountMachine },
  commands: {
    DEPOSIT: z.object({ type: z.literal('DEPOSIT'), account, amount }),
    WITHDRAW: z.object({ type: z.literal('WITHDRAW'), account, amount }),
    TRANSFER: z.object({ type: z.literal('TRANSFER'), account, to: account, amount }),
    FREEZE: z.object({ type: z.literal('FREEZE'), account, forMs: z.number().int().min(1).max(86_400_000) }),
    CLOSE: z.object({ type: z.literal('CLOSE'), account }),
    GET: z.object({ type: z.literal('GET'), account }),
  },
  route: ({ account: actorId, ...event }) => ({ actorType: 'account', actorId, event }),
});

/** What a member hosts from this module. */
export const services = [bankService];
