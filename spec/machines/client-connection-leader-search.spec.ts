import { expect } from 'chai';
import { createActor } from 'xstate';
import type { ClientConnectionInput } from '../../machines/client-connection.ts';
import { clientConnectionMachine } from '../../machines/client-connection.ts';

// Issue 10 §4: after a leader is lost, live members answer NO_LEADER (or a stale REDIRECT to the lost
// leader) until the election ends, usually within a second. The full exponential backoff would have
// the client sleep 0.4-0.8 s (then 0.8-1.6 s) between members by its fifth refusal, and find the new
// leader long after it was ready. While members answer, the wait stays at most `leaderSearchMaxMs`;
// members that do not answer (refused or silent connections) still get the full backoff.

const input: ClientConnectionInput = {
  endpoints: ['m0:9010', 'm1:9010', 'm2:9010'],
  seed: 7,
  now: 0,
  backoffBaseMs: 50,
  backoffMaxMs: 5000,
  leaderSearchMaxMs: 150,
};

/** Drive `refusals` failed attempts with the given answer; returns each wait the machine chose. */
const waitsAfter = (refusals: number, answer: 'NO_LEADER' | 'CONNECTION_LOST'): number[] => {
  const actor = createActor(clientConnectionMachine, { input }).start();
  const waits: number[] = [];
  let now = 0;
  for (let i = 0; i < refusals; i++) {
    expect(actor.getSnapshot().value, `attempt ${i}`).to.equal('CONNECTING');
    now += 5;
    actor.send(
      answer === 'NO_LEADER'
        ? { type: 'NO_LEADER', now, detail: 'no leader known' }
        : { type: 'CONNECTION_LOST', now },
    );
    expect(actor.getSnapshot().value).to.equal('AWAITING_NEW_LEADER');
    const { retryAt } = actor.getSnapshot().context;
    waits.push(retryAt - now);
    now = retryAt;
    actor.send({ type: 'TICK', now });
  }
  actor.stop();
  return waits;
};

describe('client connection: searching for a new leader', () => {
  it('waits at most leaderSearchMaxMs between members while they answer NO_LEADER, however many in a row', () => {
    const waits = waitsAfter(12, 'NO_LEADER');
    for (const wait of waits) expect(wait).to.be.within(1, input.leaderSearchMaxMs as number);
    // Twelve members asked within two seconds: a leader elected within a second is found within one wait.
    expect(waits.reduce((a, b) => a + b, 0)).to.be.at.most(12 * (input.leaderSearchMaxMs as number));
  });

  it('keeps the full exponential backoff for members that do not answer at all', () => {
    const waits = waitsAfter(8, 'CONNECTION_LOST');
    // The 8th wait is drawn from [base·2^7 / 2, base·2^7] = [3200, 6400] capped at 5000: at least 2500 ms.
    expect(waits[7]).to.be.at.least(2500);
  });

  it('treats a REDIRECT back to the leader just lost as an election in progress, not as a dead member', () => {
    const actor = createActor(clientConnectionMachine, { input }).start();
    actor.send({ type: 'OK', now: 1, sessionId: 3, leaderId: 0 });
    expect(actor.getSnapshot().value).to.equal('CONNECTED');
    const left = actor.getSnapshot().context.target;
    let now = 10;
    actor.send({ type: 'CONNECTION_LOST', now });
    for (let i = 0; i < 10; i++) {
      now = actor.getSnapshot().context.retryAt;
      actor.send({ type: 'TICK', now });
      expect(actor.getSnapshot().value).to.equal('CONNECTING');
      now += 2;
      actor.send({ type: 'REDIRECT', now, leaderId: 0, endpoint: left });
      expect(actor.getSnapshot().value, 'a redirect to the lost leader is stale').to.equal(
        'AWAITING_NEW_LEADER',
      );
      expect(actor.getSnapshot().context.retryAt - now).to.be.at.most(input.leaderSearchMaxMs as number);
    }
    actor.stop();
  });
});
