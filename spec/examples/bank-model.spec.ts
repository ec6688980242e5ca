// The bank example's account statechart (examples/bank-service.ts), tested with chorus/testkit's
// model-based tool as a user would: a lifecycle table and a ledger written from the account's rules (not
// read off the machine), checked at every step of the shortest paths, bounded simple paths and random
// walks, with the freeze's `after` driven by the simulated clock ("30 s pass").

import { expect } from 'chai';
import { type AccountEvent, accountMachine, type BankReply } from '../../examples/bank-service.ts';
import {
  actorInput,
  createModel,
  describeModel,
  REPLY_EVENT,
  type Step,
  type StepRecord,
  TELL_EVENT,
  WAIT,
  wait,
} from '../../runtime/testkit/index.ts';

const FREEZE_MS = 30_000;
const SELF = 'alice';

/** Every step a model path may take: client commands, messages from actors, and a forged credit. */
const ACCOUNT_EVENTS: Step<AccountEvent>[] = [
  { type: 'DEPOSIT', amount: 50 },
  { type: 'WITHDRAW', amount: 50 },
  { type: 'WITHDRAW', amount: 80 },
  { type: 'TRANSFER', to: 'bob', amount: 50 },
  { type: 'TRANSFER', to: SELF, amount: 10 },
  { type: 'FREEZE', forMs: FREEZE_MS },
  { type: 'CLOSE' },
  { type: 'GET' },
  { type: 'CREDIT', from: 'bob', amount: 50, origin: { actor: 'bank/account/bob' } },
  { type: 'REFUND', amount: 50, origin: { actor: 'bank/account/bob' } },
  // A client cannot send CREDIT or REFUND (the runtime stamps origin): the account must ignore them.
  { type: 'CREDIT', from: 'mallory', amount: 1000, origin: { session: 7 } },
  { type: 'REFUND', amount: 1000, origin: { session: 7 } },
];

type AccountSnapshot = StepRecord['from'] & { context: { balance: number } };
type Record = StepRecord<AccountSnapshot, AccountEvent>;

const fromActor = (event: AccountEvent): boolean => event.origin !== undefined && 'actor' in event.origin;

/** The ledger: what a step does to the balance, from the account's rules. */
const expectedBalance = ({ from, step }: Record): number => {
  const balance = from.context.balance;
  if (step.type === WAIT) return balance;
  const state = String(from.value);
  const event = step as AccountEvent;
  switch (event.type) {
    case 'DEPOSIT':
      return state === 'CLOSED' ? balance : balance + event.amount;
    case 'WITHDRAW':
      return state === 'OPEN' && event.amount <= balance ? balance - event.amount : balance;
    case 'TRANSFER':
      return state === 'OPEN' && event.to !== SELF && event.amount <= balance
        ? balance - event.amount
        : balance;
    case 'CREDIT':
      return fromActor(event) && state !== 'CLOSED' ? balance + event.amount : balance;
    case 'REFUND':
      return fromActor(event) ? balance + event.amount : balance;
    default:
      return balance;
  }
};

const replies = (record: Record) => record.emitted.filter((e) => e.type === REPLY_EVENT);
const tells = (record: Record) =>
  record.emitted.filter((e) => e.type === TELL_EVENT) as unknown as {
    actorId: string;
    event: AccountEvent;
  }[];

const model = createModel(accountMachine, {
  name: 'bank account',
  input: actorInput(`bank/account/${SELF}`),
  events: ACCOUNT_EVENTS,
  // A vertex is the lifecycle state and the balance (a multiple of 50); exploring stops past 100.
  serializeState: (snapshot) => `${String(snapshot.value)} ${snapshot.context.balance}`,
  stopWhen: (snapshot) => snapshot.context.balance > 100,
  table: {
    OPEN: { FREEZE: 'FROZEN', CLOSE: 'CLOSED' },
    FROZEN: { [WAIT]: 'OPEN' },
    CLOSED: {},
  },
  // CLOSE with money in the account is refused: a step of its own, which the table does not list.
  stepKey: ({ step, from }) =>
    step.type === 'CLOSE' && from.context.balance !== 0 ? 'CLOSE (not empty)' : undefined,
  properties: {
    'the balance follows the ledger': (record) => {
      expect(record.to.context.balance).to.equal(expectedBalance(record));
      return true;
    },
    'the balance never goes negative': ({ to }) => to.context.balance >= 0,
    'every client command is answered once, with the balance': (record) => {
      const { step, to } = record;
      const isClient =
        step.type !== WAIT && !fromActor(step as AccountEvent) && !['CREDIT', 'REFUND'].includes(step.type);
      const answers = replies(record).map((e) => (e as unknown as { value: BankReply }).value);
      if (!isClient) return answers.length === 0;
      expect(answers).to.have.length(1);
      expect(answers[0]?.balance).to.equal(to.context.balance);
      return true;
    },
    'a transfer out tells the receiver CREDIT once, for the amount taken': (record) => {
      const taken = record.from.context.balance - record.to.context.balance;
      const sent = tells(record);
      if (record.step.type === 'TRANSFER' && taken > 0) {
        expect(sent.map((t) => [t.actorId, t.event])).to.deep.equal([
          ['bob', { type: 'CREDIT', from: SELF, amount: taken }],
        ]);
      } else if (
        !(
          String(record.from.value) === 'CLOSED' &&
          record.step.type === 'CREDIT' &&
          fromActor(record.step as AccountEvent)
        )
      ) {
        expect(sent).to.deep.equal([]);
      }
      return true;
    },
    'a credit to a closed account goes back as a REFUND': (record) => {
      const { from, step } = record;
      if (String(from.value) !== 'CLOSED' || step.type !== 'CREDIT' || !fromActor(step as AccountEvent))
        return true;
      const credit = step as Extract<AccountEvent, { type: 'CREDIT' }>;
      expect(tells(record).map((t) => [t.actorId, t.event])).to.deep.equal([
        [credit.from, { type: 'REFUND', amount: credit.amount }],
      ]);
      return true;
    },
  },
});

describe('bank account model (examples/bank-service.ts): time', () => {
  it('a freeze lasts 30 s of simulated time: 29.999 s later still FROZEN, 1 ms more and OPEN', () => {
    const records = model.check([
      { type: 'DEPOSIT', amount: 50 },
      { type: 'FREEZE', forMs: FREEZE_MS },
      wait(FREEZE_MS - 1),
      { type: 'WITHDRAW', amount: 30 },
      wait(1),
      { type: 'WITHDRAW', amount: 30 },
    ]);
    expect(records.map((r) => String(r.to.value))).to.deep.equal([
      'OPEN',
      'FROZEN',
      'FROZEN',
      'FROZEN',
      'OPEN',
      'OPEN',
    ]);
    expect(records.map((r) => r.to.context.balance)).to.deep.equal([50, 50, 50, 50, 50, 20]);
    expect(records[4]?.time).to.equal(FREEZE_MS);
  });
});

describe('bank account model (examples/bank-service.ts): every edge', () => {
  it('takes every step from every vertex of the model once, each judged by the table and the ledger', () => {
    const paths = model.edgePaths();
    for (const path of paths) model.check(path.steps);
    expect(paths.length).to.be.greaterThan(50);
  });
});

describeModel(model, {
  paths: ['shortest', 'simple'],
  simple: { maxLength: 6, maxPaths: 15 },
  walks: { runs: 60, maxLength: 25 },
  require: ['states', 'transitions', 'guards', 'table'],
  report: false,
});
