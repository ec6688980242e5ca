// The client's edge: every frame a member sends is checked before the connection machine or a command
// sees it (runtime/client/member-frames.ts).

import { expect } from 'chai';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { createActor } from 'xstate';
import { clientConnectionMachine } from '../../../machines/client-connection.ts';
import { MAX_RETRY_AFTER_MS, parseMemberFrame } from '../../../runtime/client/member-frames.ts';
import { ClientKind } from '../../../runtime/wire/client-frames.ts';
import { checkProperty } from '../../support/property.ts';

const token = new Uint8Array(32).fill(7);

/** One well-formed body of every kind a member sends. */
const VALID: [number, Record<string, unknown>][] = [
  [ClientKind.SESSION_EVENT, { code: 'OK', sessionId: 7, leaderId: 1, resumeToken: token }],
  [ClientKind.SESSION_EVENT, { code: 'OK', sessionId: 7, leaderId: 1 }],
  [ClientKind.SESSION_EVENT, { code: 'ERROR', detail: 'session limit reached', retryable: true }],
  [ClientKind.SESSION_EVENT, { code: 'REDIRECT', leaderId: 2, endpoint: '10.0.0.2:9010' }],
  [ClientKind.SESSION_EVENT, { code: 'NO_LEADER', detail: 'electing' }],
  [ClientKind.SESSION_EVENT, { code: 'RESUME_REFUSED', sessionId: 7, detail: 'session 7 is not open' }],
  [ClientKind.SESSION_EVENT, { code: 'KEEPALIVE', sessionId: 7 }],
  [ClientKind.SESSION_EVENT, { code: 'AUTHENTICATION_REJECTED', detail: 'bad token' }],
  [ClientKind.SESSION_EVENT, { code: 'CHALLENGE', challenge: token }],
  [ClientKind.SESSION_EVENT, { code: 'CLOSED', sessionId: 7, reason: 'TIMEOUT' }],
  [ClientKind.REPLY, { correlationId: 3, payload: new Uint8Array([1, 2]) }],
  [ClientKind.REPLY, { correlationId: 3, payload: new Uint8Array(0), outcomeUnknown: true }],
  [ClientKind.BUSY, { correlationId: 3, retryAfterMs: 50, detail: 'backlog full' }],
  [ClientKind.NOTIFY, { payload: new Uint8Array(pack({ type: 'OPEN', party: 'p1', epoch: 3 })) }],
];

/** Any value msgpack can carry, bytes included. */
const anyValue = fc.oneof(
  fc.anything(),
  fc.uint8Array({ maxLength: 2000 }),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1, 2 ** 53, 'xstate.stop', '', null),
);

describe('client edge: frames from a member', () => {
  it('takes a well-formed frame of every kind, as exactly the fields it declares', () => {
    for (const [kind, body] of VALID) {
      const frame = parseMemberFrame(kind, { ...body, extra: 'ignored' }, 42);
      expect(frame, JSON.stringify(body)).to.not.have.property('problem');
      if ('kind' in frame && frame.kind === 'EVENT') {
        expect(frame.event).to.include({ type: body.code, now: 42 });
        expect(frame.event).to.not.have.property('extra');
        expect(frame.event).to.not.have.property('code');
      }
    }
    expect(parseMemberFrame(ClientKind.SESSION_EVENT, { code: 'KEEPALIVE', sessionId: 7 }, 0)).to.deep.equal({
      kind: 'ALIVE',
    });
  });

  it('refuses a frame whose body is not what its kind promises, naming the field', () => {
    const refused = (kind: number, body: unknown) => {
      const frame = parseMemberFrame(kind, body, 0);
      expect(frame, JSON.stringify(body)).to.have.property('problem');
      return (frame as { problem: string }).problem;
    };
    expect(refused(ClientKind.SESSION_EVENT, { code: 'REDIRECT', leaderId: 1 })).to.match(
      /endpoint must be host:port/,
    );
    expect(refused(ClientKind.SESSION_EVENT, { code: 'REDIRECT', leaderId: 1, endpoint: 'nohost' })).to.match(
      /endpoint/,
    );
    expect(refused(ClientKind.SESSION_EVENT, { code: 'xstate.stop' })).to.match(/unknown session event code/);
    expect(refused(ClientKind.SESSION_EVENT, { code: 'OK', sessionId: -1, leaderId: 0 })).to.match(
      /sessionId/,
    );
    expect(refused(ClientKind.SESSION_EVENT, { code: 'ERROR', detail: 'x' })).to.match(/retryable/);
    expect(refused(ClientKind.SESSION_EVENT, { code: 'CHALLENGE', challenge: 'abc' })).to.match(/challenge/);
    expect(
      refused(ClientKind.BUSY, { correlationId: 1, retryAfterMs: Number.POSITIVE_INFINITY, detail: '' }),
    ).to.match(/retryAfterMs/);
    expect(
      refused(ClientKind.BUSY, { correlationId: 1, retryAfterMs: MAX_RETRY_AFTER_MS + 1, detail: '' }),
    ).to.match(/retryAfterMs/);
    expect(refused(ClientKind.REPLY, { correlationId: 1.5, payload: new Uint8Array(0) })).to.match(
      /correlationId/,
    );
    expect(refused(ClientKind.REPLY, [1, 2])).to.match(/not a map/);
    expect(refused(ClientKind.NOTIFY, { payload: 'OPEN p1' })).to.match(
      /notify: payload must be msgpack bytes/,
    );
    expect(refused(ClientKind.NOTIFY, { payload: new Uint8Array(0) })).to.match(/notify: payload/);
    // An array of two holding one element: the payload ends early.
    expect(refused(ClientKind.NOTIFY, { payload: new Uint8Array([0x92, 0x01]) })).to.match(/not msgpack/);
    expect(parseMemberFrame(ClientKind.NOTIFY, VALID[VALID.length - 1][1], 0)).to.deep.equal({
      kind: 'NOTIFY',
      message: { type: 'OPEN', party: 'p1', epoch: 3 },
    });
    expect(refused(99, {})).to.match(/unexpected frame kind 99/);
  });

  it('any body, or a valid one with a field replaced by anything, is refused with a reason or taken whole; the machine survives what is taken', () => {
    const mutated = fc
      .tuple(fc.constantFrom(...VALID), fc.string({ maxLength: 20 }), anyValue)
      .map(([[kind, body], field, value]) => {
        const keys = Object.keys(body);
        const key = keys.includes(field) || field.length > 8 ? field : keys[field.length % keys.length];
        return [kind, { ...body, [key]: value }] as const;
      });
    const random = fc.tuple(fc.constantFrom(...Object.values(ClientKind)), anyValue);
    checkProperty(
      fc.property(fc.oneof(mutated, random), ([kind, body]) => {
        const frame = parseMemberFrame(kind, body, 5);
        if ('problem' in frame) {
          expect(frame.problem).to.be.a('string').and.not.equal('');
          return;
        }
        if (frame.kind !== 'EVENT') return;
        // Fed to a live connection machine in each state it can be in, it never stops it with an error.
        for (const prefix of [[], [{ type: 'OK', now: 1, sessionId: 7, leaderId: 0 }]] as const) {
          const actor = createActor(clientConnectionMachine, {
            input: { endpoints: ['m0:9010', 'm1:9010'], seed: 1, now: 0 },
          }).start();
          for (const event of prefix) actor.send(event);
          actor.send(frame.event);
          expect(actor.getSnapshot().status, JSON.stringify(frame.event)).to.not.equal('error');
          const { target } = actor.getSnapshot().context;
          expect(target, 'where the next dial goes').to.match(/^[^\s]+:\d{1,5}$/);
          actor.stop();
        }
      }),
      { numRuns: 2000 },
    );
  });
});
