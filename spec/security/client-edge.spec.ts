// The client edge under fuzzing: random and mutated-valid client frames, first against the validation
// function and a leader's session manager in process (thousands of sequences from an attacker's
// connection beside a victim's open session), then as raw bytes and frames against a real member. No
// input throws; none changes the victim's session; the member stays up and serves clients.

import { createConnection } from 'node:net';
import { expect } from 'chai';
import fc from 'fast-check';
import { unpack } from 'msgpackr';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';
import { encodeKvCommand } from '../../actors/services/kv.ts';
import {
  seededNonceSource,
  sharedTokenAuthenticator,
  textBytes,
} from '../../actors/sessions/authenticators.ts';
import { decodeSessionClose } from '../../actors/sessions/payloads.ts';
import { parseClientRequest } from '../../actors/sessions/requests.ts';
import type { SessionEffect, SessionInput } from '../../actors/sessions/session-manager.ts';
import { SessionManager } from '../../actors/sessions/session-manager.ts';
import { SESSION_PROTOCOL_VERSION } from '../../machines/client-session.ts';
import { ClientKind } from '../../runtime/wire/client-frames.ts';
import { encodeFrame } from '../../runtime/wire/frame-codec.ts';
import { connectClient, TestCluster } from '../runtime/cluster/support.ts';
import { checkProperty, propertySeed } from '../support/property.ts';

const TOKEN = 'a-shared-token-of-32-bytes-length';
const VICTIM = 1;
const ATTACKER = 2;

/** A leader's session manager with a victim session open on connection 1; entries commit at once. */
class Leader {
  readonly manager = new SessionManager({
    memberId: 0,
    maxSessions: 8,
    sessionTimeoutMs: 60_000,
    authenticator: sharedTokenAuthenticator({ token: TOKEN }),
    resumeTokens: seededNonceSource(1),
  });
  readonly log: LogEntry[] = [];
  readonly effects: SessionEffect[] = [];
  readonly victimSession: number;

  constructor() {
    this.feed({ type: 'ROLE_CHANGED', now: 0, leader: { kind: 'SELF' } });
    this.feed({ type: 'CONNECTION_OPENED', now: 0, connectionId: VICTIM });
    this.feed({
      type: 'CONNECT',
      now: 0,
      connectionId: VICTIM,
      credentials: textBytes(TOKEN),
      protocolVersion: SESSION_PROTOCOL_VERSION,
    });
    const ok = this.effects.find(
      (e) => e.type === 'SEND' && e.connectionId === VICTIM && e.event.code === 'OK',
    );
    if (ok?.type !== 'SEND' || ok.event.code !== 'OK') throw new Error('the victim session did not open');
    this.victimSession = ok.event.sessionId;
    this.effects.length = 0;
  }

  feed(input: SessionInput): void {
    for (const effect of this.manager.handle(input)) {
      this.effects.push(effect);
      if (effect.type !== 'APPEND') continue;
      const entry: LogEntry = {
        index: this.log.length + 1,
        term: 1,
        timestamp: 1000 + this.log.length,
        kind: effect.kind,
        payload: effect.payload,
      };
      this.log.push(entry);
      if (effect.connectionId !== undefined) {
        this.feed({
          type: 'OPEN_APPENDED',
          now: input.now,
          connectionId: effect.connectionId,
          index: entry.index,
        });
      }
      this.feed({ type: 'COMMITTED', now: input.now, entry });
    }
  }
}

/** What an attacker who knows the victim's session id might send, whole or mutated. */
const attackerRequest = (sessionId: number): fc.Arbitrary<unknown> => {
  const id = fc.oneof(fc.constant(sessionId), fc.integer(), fc.double(), fc.string(), fc.constant(null));
  const valid = fc.oneof(
    fc.record({
      type: fc.constant('CONNECT'),
      credentials: fc.oneof(fc.constant(textBytes(TOKEN)), fc.uint8Array({ maxLength: 64 })),
      protocolVersion: fc.constant(SESSION_PROTOCOL_VERSION),
      resumeSessionId: fc.oneof(id, fc.constant(undefined)),
      resumeToken: fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.constant(undefined)),
    }),
    fc.record({ type: fc.constant('CHALLENGE_RESPONSE'), response: fc.uint8Array({ maxLength: 64 }) }),
    fc.record({ type: fc.constant('KEEPALIVE'), sessionId: id }),
    fc.record({
      type: fc.constant('SESSION_MESSAGE'),
      sessionId: id,
      correlationId: fc.oneof(fc.nat(), fc.integer(), fc.double()),
      lowestAwaited: fc.oneof(fc.nat(), fc.integer()),
      body: fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.string()),
    }),
    fc.record({ type: fc.constant('CLOSE'), sessionId: id }),
  );
  const mutated = fc
    .tuple(valid, fc.string(), fc.anything())
    .map(([request, key, value]) => ({ ...(request as object), [key]: value }));
  return fc.oneof(valid, mutated, fc.anything({ withObjectString: true, withNullPrototype: true }));
};

describe('security: the client edge under fuzzing', () => {
  it('validation never throws; an attacker’s frames never touch another client’s open session', () => {
    const probe = new Leader();
    checkProperty(
      fc.property(
        fc.array(attackerRequest(probe.victimSession), { minLength: 1, maxLength: 12 }),
        (bodies) => {
          const leader = new Leader();
          const before = leader.manager.list().find((s) => s.id === leader.victimSession);
          leader.feed({ type: 'CONNECTION_OPENED', now: 1, connectionId: ATTACKER });
          bodies.forEach((body, i) => {
            const parsed = parseClientRequest(ATTACKER, 2 + i, body);
            if (parsed.ok) leader.feed(parsed.input);
            else expect(parsed.error).to.match(/^bad client request: /);
          });
          const after = leader.manager.list().find((s) => s.id === leader.victimSession);
          expect(after, 'the victim session is still there').to.deep.equal(before);
          expect(after?.connectionId).to.equal(VICTIM);
          for (const effect of leader.effects) {
            if (effect.type === 'FORWARD') expect(effect.sessionId).to.not.equal(leader.victimSession);
            if (effect.type === 'CLOSE_CONNECTION') expect(effect.connectionId).to.equal(ATTACKER);
            if (effect.type === 'SEND') expect(effect.connectionId).to.equal(ATTACKER);
          }
          for (const entry of leader.log) {
            if (entry.kind === EntryKind.SESSION_CLOSE) {
              expect(decodeSessionClose(entry.payload).sessionId).to.not.equal(leader.victimSession);
            }
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a real member survives random bytes and random frames on its client port, and keeps serving', async function () {
    this.timeout(60_000);
    const cluster = await TestCluster.start();
    try {
      await cluster.whole();
      const leader = cluster.cluster.leader() as number;
      const [host, port] = cluster.endpoint(leader).split(':');
      // Fresh inputs every run; the seed is in every failure message below.
      const seed = propertySeed();
      const inputs = fc.sample(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 256 }).map((bytes) => Buffer.from(bytes)),
          fc
            .tuple(
              fc.oneof(fc.constant(ClientKind.CLIENT_REQUEST), fc.integer({ min: 0, max: 0xffff })),
              attackerRequest(1),
            )
            .map(([kind, body]) => {
              try {
                return encodeFrame(kind, body);
              } catch {
                return Buffer.from([0]);
              }
            }),
        ),
        { numRuns: 400, seed },
      );
      // Eight inputs per connection, forty connections at a time at most.
      for (let at = 0; at < inputs.length; at += 8 * 40) {
        await Promise.all(
          Array.from({ length: 40 }, (_, c) => inputs.slice(at + c * 8, at + c * 8 + 8)).map(
            (batch) =>
              new Promise<void>((resolve) => {
                if (batch.length === 0) return resolve();
                const socket = createConnection({ host, port: Number(port) }, () => {
                  for (const bytes of batch) socket.write(bytes);
                  setTimeout(() => socket.destroy(), 50);
                });
                socket.on('error', () => {});
                socket.on('close', () => resolve());
              }),
          ),
        );
      }
      expect(
        cluster.cluster.views.every((v) => v.running),
        `every member is still running (inputs: FC_SEED=${seed})`,
      ).to.equal(true);
      expect(cluster.cluster.leader(), `the same leader (inputs: FC_SEED=${seed})`).to.equal(leader);
      const client = await connectClient(cluster);
      try {
        const reply = await client.send(encodeKvCommand({ op: 'put', key: 'fuzzed', value: 'still-up' }));
        expect(unpack(reply)).to.deep.equal({ ok: true });
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });
});
