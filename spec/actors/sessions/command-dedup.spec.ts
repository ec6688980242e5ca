// The de-duplication table every service uses (actors/sessions/command-dedup.ts), checked against an
// independent oracle: a client that numbers its commands, keeps a window of unanswered ones, resends,
// times out, and whose copies reach the log in any order and any number of times. The oracle is the
// client's own knowledge plus an infinite memory of what was applied: no command is applied twice, a
// resend is answered with the first reply, a command the client still awaits is never declared
// too old, and once the client has every answer the table forgets the session's replies.

import { expect } from 'chai';
import fc from 'fast-check';
import { CommandDedup } from '../../../actors/sessions/command-dedup.ts';
import { checkProperty } from '../../support/property.ts';

type Action =
  | { readonly kind: 'send' }
  | { readonly kind: 'resend'; readonly pick: number }
  | { readonly kind: 'deliver'; readonly pick: number }
  | { readonly kind: 'answer'; readonly pick: number }
  | { readonly kind: 'timeout'; readonly pick: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'send' as const }) },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ kind: 'resend' as const, pick })) },
  { weight: 5, arbitrary: fc.nat().map((pick) => ({ kind: 'deliver' as const, pick })) },
  { weight: 3, arbitrary: fc.nat().map((pick) => ({ kind: 'answer' as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ kind: 'timeout' as const, pick })) },
);

describe('CommandDedup (exactly-once per session)', () => {
  it('against a client with resends, timeouts and any delivery order: once, first reply, nothing awaited dropped', () => {
    checkProperty(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(action, { maxLength: 300 }), (window, actions) => {
        const table = new CommandDedup<string>(64);
        const SESSION = 7;
        let nextId = 1;
        const pending: number[] = []; // ascending: the client's unanswered commands
        const inFlight: [id: number, lowestAwaited: number][] = []; // copies not yet in the log
        const firstReply = new Map<number, string>(); // the oracle: every command applied, ever
        const everDelivered = new Set<number>();
        const lowest = () => pending[0] ?? nextId;
        const deliver = (at: number) => {
          const [id, lowestAwaited] = inFlight.splice(at, 1)[0];
          everDelivered.add(id);
          const verdict = table.check(SESSION, id, lowestAwaited);
          switch (verdict.kind) {
            case 'NEW':
              expect(firstReply.has(id), `command ${id} applied twice`).to.equal(false);
              firstReply.set(id, `reply-${id}`);
              table.record(SESSION, id, `reply-${id}`);
              break;
            case 'APPLIED':
              expect(verdict.reply, `resend of ${id}`).to.equal(firstReply.get(id));
              break;
            case 'OUTCOME_UNKNOWN':
              expect(pending.includes(id), `command ${id} is still awaited, yet declared too old`).to.equal(
                false,
              );
              break;
            case 'WINDOW_FULL':
              expect.fail(`a client with a window of ${window} filled a table of 64`);
          }
        };
        for (const step of actions) {
          if (step.kind === 'send') {
            if (pending.length > 0 && nextId >= pending[0] + window) continue;
            pending.push(nextId);
            inFlight.push([nextId, lowest()]);
            nextId++;
          } else if (step.kind === 'resend' && pending.length > 0) {
            inFlight.push([pending[step.pick % pending.length], lowest()]);
          } else if (step.kind === 'deliver' && inFlight.length > 0) {
            deliver(step.pick % inFlight.length);
          } else if (step.kind === 'answer') {
            // The client hears the reply of an applied command it awaits.
            const answerable = pending.filter((id) => firstReply.has(id));
            if (answerable.length > 0)
              pending.splice(pending.indexOf(answerable[step.pick % answerable.length]), 1);
          } else if (step.kind === 'timeout' && pending.length > 0) {
            pending.splice(step.pick % pending.length, 1); // given up: outcome unknown to the client
          }
        }
        // Liveness: everything in flight reaches the log; each awaited command is then applied.
        while (inFlight.length > 0) deliver(0);
        for (const id of pending) {
          if (everDelivered.has(id))
            expect(firstReply.has(id), `awaited command ${id} never applied`).to.equal(true);
        }
        // The client has its answers and sends one more: the table forgets everything below it.
        pending.length = 0;
        table.check(SESSION, nextId, nextId);
        expect(table.remembered(SESSION)).to.equal(0);
      }),
      { numRuns: 300 },
    );
  });

  it('snapshots in a canonical order and restores; parts of one session merge with the higher floor', () => {
    const a = new CommandDedup<string>();
    for (const id of [5, 3, 4]) {
      a.check(1, id, 3);
      a.record(1, id, `r${id}`);
    }
    a.check(2, 1, 1);
    a.record(2, 1, 's1');
    expect(a.snapshot()).to.deep.equal([
      [
        1,
        3,
        [
          [3, 'r3'],
          [4, 'r4'],
          [5, 'r5'],
        ],
      ],
      [2, 1, [[1, 's1']]],
    ]);
    const b = new CommandDedup<string>();
    b.restore(a.snapshot());
    b.restore([[1, 4, [[6, 'r6']]]]);
    expect(b.snapshot()).to.deep.equal([
      [
        1,
        4,
        [
          [4, 'r4'],
          [5, 'r5'],
          [6, 'r6'],
        ],
      ],
      [2, 1, [[1, 's1']]],
    ]);
    expect(b.check(1, 3, 3).kind).to.equal('OUTCOME_UNKNOWN');
    expect(b.check(1, 5, 3)).to.deep.equal({ kind: 'APPLIED', reply: 'r5' });
  });
});
