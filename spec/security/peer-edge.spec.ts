// The peer edge in process: every peer frame kind against the validation function and against an
// authenticated peer connection (fast-check: valid, mutated-valid and random frames, a fresh seed per run,
// printed by fast-check on failure), and the handshake against forgeries.

import { expect } from 'chai';
import fc from 'fast-check';
import type { PeerMessage } from '../../actors/consensus/types.ts';
import { formatMembersString, type MemberConfig } from '../../runtime/config.ts';
import { PeerNetwork } from '../../runtime/peer-network.ts';
import { PeerKind, parseConsensusMessage, toWire } from '../../runtime/wire/peer-frames.ts';
import { newNonce, signProof } from '../../runtime/wire/peer-handshake.ts';
import { dial, type FramedConnection } from '../../runtime/wire/transport.ts';
import { eventually } from '../support/ports.ts';
import { checkProperty } from '../support/property.ts';
import { mutation, validWireMessage } from './peer-frames.arbitraries.ts';
import { dialAsPeer, memberConfigs, peerOptions, sendConsensus, TEST_SECRETS } from './peers.ts';

const LIMITS = { maxEntryPayloadBytes: 1 << 20 };

/** The message the core should see for a valid wire message: APPEND's flat entries rebuilt. */
const expectedMessage = (wire: Record<string, unknown>): object => {
  if (wire.type !== 'APPEND') return wire;
  const flat = wire.entries as unknown[];
  const entries = [];
  for (let j = 0; j < flat.length; j += 5) {
    entries.push({
      index: flat[j],
      term: flat[j + 1],
      timestamp: flat[j + 2],
      kind: flat[j + 3],
      payload: flat[j + 4],
    });
  }
  return { ...wire, entries };
};

describe('security: the peer edge checks every frame before the consensus module sees it', () => {
  it('accepts every valid consensus message of every kind, rebuilt field for field', () => {
    checkProperty(
      fc.property(validWireMessage, (wire) => {
        expect(parseConsensusMessage(wire, LIMITS)).to.deep.equal(expectedMessage(wire));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses every mutated-valid message of every kind with a reason, never throwing', () => {
    checkProperty(
      fc.property(validWireMessage.chain(mutation), ({ how, message }) => {
        const parsed = parseConsensusMessage(message, LIMITS);
        expect(parsed, `${how}: ${JSON.stringify(message)}`).to.be.a('string');
      }),
      { numRuns: 5000 },
    );
  });

  it('never throws on random bodies, and whatever it accepts is a well-formed message it accepts again', () => {
    const known = [
      'VOTE',
      'TIMEOUT_NOW',
      'CANVASS_POSITION',
      'REQUEST_VOTE',
      'APPEND',
      'APPEND_RESPONSE',
      'INSTALL_SNAPSHOT',
    ];
    const body = fc.oneof(
      fc.anything({ withTypedArray: true, withNullPrototype: true }),
      fc
        .dictionary(
          fc.constantFrom('term', 'logTerm', 'logIndex', 'granted', 'entries', 'data', 'index'),
          fc.anything(),
        )
        .chain((fields) => fc.constantFrom(...known).map((type) => ({ ...fields, type }))),
    );
    checkProperty(
      fc.property(body, (random) => {
        const parsed = parseConsensusMessage(random, LIMITS);
        if (typeof parsed === 'string') return;
        expect(known).to.include(parsed.type);
        expect(parseConsensusMessage(toWire(parsed), LIMITS)).to.deep.equal(parsed);
      }),
      { numRuns: 5000 },
    );
  });

  it('a payload over maxEntryPayloadBytes is refused, naming the limit', () => {
    const refused = parseConsensusMessage(
      {
        type: 'APPEND',
        term: 2,
        prevIndex: 0,
        prevTerm: 0,
        entries: [1, 2, 0, 3, new Uint8Array(11)],
        commitIndex: 0,
        leaderLastIndex: 1,
      },
      { maxEntryPayloadBytes: 10 },
    );
    expect(refused).to.match(/payload of 11 bytes exceeds 10 \(derived from maxFrameBytes\)/);
  });

  describe('on an authenticated peer connection', () => {
    let network: PeerNetwork;
    let cluster: MemberConfig[];
    const delivered: PeerMessage[] = [];
    const refusals: string[] = [];

    before(async () => {
      cluster = await memberConfigs(2);
      network = new PeerNetwork(
        peerOptions(cluster[1], cluster, {
          onMessage: (_, message) => delivered.push(message),
          onRefused: (reason) => refusals.push(reason),
        }),
      );
      await network.start();
    });
    after(() => network.stop());

    it('delivers the valid frames before the first invalid one, then closes with the reason; nothing after it', async () => {
      const frame = fc.oneof(
        validWireMessage.map((wire) => ({
          valid: true,
          kind: PeerKind.CONSENSUS as number,
          body: wire as unknown,
        })),
        validWireMessage.chain(mutation).map(({ message }) => ({
          valid: false,
          kind: PeerKind.CONSENSUS as number,
          body: message as unknown,
        })),
        fc
          .tuple(
            fc.integer({ min: 0, max: 40 }).filter((k) => k !== PeerKind.CONSENSUS && k !== 0),
            fc.anything(),
          )
          .map(([kind, body]) => ({ valid: false, kind, body })),
      );
      await checkProperty(
        fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 8 }), async (frames) => {
          delivered.length = 0;
          refusals.length = 0;
          const { connection, closed } = await dialAsPeer(cluster[1], cluster, 0);
          for (const f of frames) connection.send(f.kind, f.body);
          const firstInvalid = frames.findIndex((f) => !f.valid);
          const prefix = firstInvalid < 0 ? frames : frames.slice(0, firstInvalid);
          if (firstInvalid >= 0) {
            const reason = await closed;
            expect(reason).to.include('bad message from peer 0');
            expect(refusals.join('\n')).to.include('bad message from peer 0');
          } else {
            await eventually(() => delivered.length === frames.length, 'every valid frame delivered');
            connection.close('case done');
          }
          expect(delivered).to.deep.equal(
            prefix.map((f) => expectedMessage(f.body as Record<string, unknown>)),
          );
        }),
        { numRuns: 400, timeout: 3000 },
      );
    });
  });

  describe('the handshake', () => {
    const started: PeerNetwork[] = [];
    afterEach(async () => {
      await Promise.all(started.splice(0).map((n) => n.stop()));
    });
    const start = async (
      self: MemberConfig,
      all: MemberConfig[],
      rest: Partial<Parameters<typeof peerOptions>[2]> = {},
    ) => {
      const network = new PeerNetwork(peerOptions(self, all, { onMessage: () => {}, ...rest }));
      started.push(network);
      await network.start();
      return network;
    };

    it('forged HELLO (no proof, wrong secret, a reflected proof, another member id): refused, never replaces the live connection', async () => {
      const cluster = await memberConfigs(3);
      const got: PeerMessage[] = [];
      let drops = 0;
      const target = await start(cluster[2], cluster, {
        onMessage: (_, message) => got.push(message),
        onPeerChange: (peer, up) => {
          if (!up && peer === 1) drops++;
        },
      });
      const live = await start(cluster[1], cluster);
      await eventually(() => target.connectedPeers().includes(1), 'member 1 connected to member 2');
      const membersString = formatMembersString(cluster);
      const forge = async (variant: number): Promise<string> => {
        const connection = await dial(cluster[2].host, cluster[2].peerPort, {
          maxFrameBytes: 1 << 20,
          name: 'target',
        });
        const closed = new Promise<string>((resolve) => connection.once('close', resolve));
        const own = newNonce();
        const claim = variant === 4 ? 2 : variant === 5 ? 7 : 1;
        connection.send(PeerKind.HELLO, {
          memberId: claim,
          members: membersString,
          ...(variant === 6 ? {} : { nonce: own }),
        });
        const hello = await firstFrame(connection, closed);
        const challenge = (hello?.body as { nonce?: Uint8Array; proof?: Uint8Array } | undefined) ?? {};
        const proofs = [
          () => new Uint8Array(32), // 0: zeros
          () =>
            signProof(
              [Buffer.from('not-the-cluster-secret-but-long-enough-0123')],
              dialInput(challenge.nonce, own),
            ), // 1: wrong secret
          () => challenge.proof ?? new Uint8Array(32), // 2: the target's own proof reflected back
          () => signProof(TEST_SECRETS, { ...dialInput(challenge.nonce, own), from: 0 }), // 3: a proof for member 0, claiming 1
        ];
        if (variant < 4) connection.send(PeerKind.PROOF, { proof: proofs[variant]() });
        // Whatever the handshake's fate, a forged APPEND follows at once: it must never be read.
        sendConsensus(
          connection,
          toWire({
            type: 'APPEND',
            term: 99,
            prevIndex: 0,
            prevTerm: 0,
            entries: [],
            commitIndex: 0,
            leaderLastIndex: 0,
          }),
        );
        return closed;
      };
      const dialInput = (challenge: Uint8Array | undefined, own: Uint8Array) => ({
        role: 'dial' as const,
        from: 1,
        to: 2,
        members: membersString,
        challenge: challenge ?? new Uint8Array(32),
        own,
      });
      const reasons: string[] = [];
      for (let round = 0; round < 25; round++) {
        reasons.push(...(await Promise.all([0, 1, 2, 3, 4, 5, 6].map((variant) => forge(variant)))));
      }
      expect(reasons.slice(0, 7).map((r) => r.replace(/^closed by [^:]+: /, ''))).to.deep.equal([
        'refused by member 2: member 1 did not prove it holds the cluster secret; give every member the same peerAuthentication secrets',
        'refused by member 2: member 1 did not prove it holds the cluster secret; give every member the same peerAuthentication secrets',
        'refused by member 2: member 1 did not prove it holds the cluster secret; give every member the same peerAuthentication secrets',
        'refused by member 2: member 1 did not prove it holds the cluster secret; give every member the same peerAuthentication secrets',
        "refused by member 2: member id 2 is this member's own id",
        "refused by member 2: member 7 is not in this cluster's configuration",
        'refused by member 2: HELLO.nonce must be 32 random bytes (a member of an older build? upgrade every member)',
      ]);
      expect(drops, 'times the live connection from member 1 was replaced or dropped').to.equal(0);
      expect(got, 'messages that reached the consensus module').to.deep.equal([]);
      expect(target.connectedPeers()).to.deep.equal([1]);
      live.send(2, { type: 'TIMEOUT_NOW', term: 5 });
      await eventually(() => got.length === 1, 'the live connection still delivers');
    });

    it('random and mutated HELLO and PROOF frames never authenticate, never deliver, never throw', async () => {
      const cluster = await memberConfigs(2);
      const got: PeerMessage[] = [];
      const target = await start(cluster[1], cluster, { onMessage: (_, message) => got.push(message) });
      const membersString = formatMembersString(cluster);
      const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
      const hello = fc.record(
        {
          memberId: fc.constantFrom<unknown>(0, 1, 2, -1, 0.5, '0', null),
          members: fc.oneof(fc.constant(membersString), fc.string()),
          nonce: fc.oneof(bytes(32), fc.uint8Array({ maxLength: 40 }), fc.anything()),
          proof: fc.oneof(bytes(32), fc.anything()),
        },
        { requiredKeys: [] },
      );
      const frame = fc.oneof(
        hello.map((body) => ({ kind: PeerKind.HELLO as number, body: body as unknown })),
        fc
          .oneof(bytes(32), fc.anything())
          .map((proof) => ({ kind: PeerKind.PROOF as number, body: { proof } as unknown })),
        fc
          .tuple(fc.integer({ min: 1, max: 40 }), fc.anything({ withTypedArray: true }))
          .map(([kind, body]) => ({ kind, body })),
      );
      await checkProperty(
        fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 4 }), async (frames) => {
          const connection = await dial(cluster[1].host, cluster[1].peerPort, {
            maxFrameBytes: 1 << 20,
            name: 'target',
          });
          const closed = new Promise<string>((resolve) => connection.once('close', resolve));
          for (const f of frames) connection.send(f.kind, f.body);
          sendConsensus(connection, { type: 'VOTE', term: 1, granted: true });
          expect(await closed).to.include('refused by member 1');
          expect(got).to.deep.equal([]);
          expect(target.connectedPeers()).to.deep.equal([]);
        }),
        { numRuns: 500, timeout: 3000 },
      );
    });

    it('members with different secrets refuse each other; during a rotation (first signs, any verifies) they connect', async () => {
      const cluster = await memberConfigs(2);
      const oldSecret = TEST_SECRETS[0];
      const newSecret = Buffer.from('the-next-cluster-secret-0123456789-abcdefghij');
      const reasons: string[] = [];
      const a = await start(cluster[0], cluster, {
        secrets: [newSecret],
        backoffBaseMs: 10,
        backoffMaxMs: 20,
        onPeerChange: (_, up, reason) => !up && reasons.push(reason),
      });
      const b = await start(cluster[1], cluster);
      await eventually(() => reasons.length >= 2, 'refusals');
      expect(reasons[0]).to.include('member 1 did not prove it holds the cluster secret');
      expect(a.connectedPeers()).to.deep.equal([]);
      expect(b.connectedPeers()).to.deep.equal([]);
      await Promise.all(started.splice(0).map((n) => n.stop()));
      const c = await start(cluster[0], cluster, { secrets: [newSecret, oldSecret] });
      const d = await start(cluster[1], cluster, { secrets: [oldSecret, newSecret] });
      await eventually(
        () => c.connectedPeers().length === 1 && d.connectedPeers().length === 1,
        'connected mid-rotation',
      );
    });
  });
});

/** The first frame on a connection, or undefined if it closes first. */
const firstFrame = (
  connection: FramedConnection,
  closed: Promise<string>,
): Promise<{ kind: number; body: unknown } | undefined> =>
  Promise.race([
    new Promise<{ kind: number; body: unknown }>((resolve) =>
      connection.once('frame', (kind, body) => resolve({ kind, body })),
    ),
    closed.then(() => undefined),
  ]);
