// Helpers for the peer-edge tests: PeerNetwork options as a member builds them from its configuration,
// with an inline secret, and a hand-driven peer connection that performs (or fakes) the handshake.

import { createConnection } from 'node:net';
import type { PeerMessage } from '../../actors/consensus/types.ts';
import {
  clusterConfigSchema,
  formatMembersString,
  type MemberConfig,
  maxEntryPayloadBytes,
  maxPeerFrameBytes,
} from '../../runtime/config.ts';
import type { PeerNetworkOptions } from '../../runtime/peer-network.ts';
import { encodeFrame } from '../../runtime/wire/frame-codec.ts';
import { PeerKind, parseHello } from '../../runtime/wire/peer-frames.ts';
import { newNonce, signProof } from '../../runtime/wire/peer-handshake.ts';
import { dial, type FramedConnection } from '../../runtime/wire/transport.ts';
import { freePorts } from '../support/ports.ts';

/** A cluster secret for tests (inline; a real cluster reads it from a 0600 file). */
export const TEST_SECRET = 'test-cluster-secret-0123456789-abcdefghijklmnop';
export const TEST_SECRETS = [Buffer.from(TEST_SECRET)];

const LIMITS = clusterConfigSchema.shape.limits.parse(undefined);
const FRAME = { maxFrameBytes: 1 << 20 };

/** `size` members on loopback with free ports. */
export const memberConfigs = async (size: number): Promise<MemberConfig[]> => {
  const ports = await freePorts(size * 2);
  return Array.from({ length: size }, (_, id) => ({
    id,
    host: '127.0.0.1',
    clientPort: ports[2 * id],
    peerPort: ports[2 * id + 1],
  }));
};

/** PeerNetwork options with the defaults a member derives from its configuration. */
export const peerOptions = (
  self: MemberConfig,
  members: readonly MemberConfig[],
  rest: Pick<PeerNetworkOptions, 'onMessage'> & Partial<PeerNetworkOptions>,
): PeerNetworkOptions => ({
  self,
  members,
  secrets: TEST_SECRETS,
  maxFrameBytes: maxPeerFrameBytes(FRAME),
  frameLimits: { maxEntryPayloadBytes: maxEntryPayloadBytes(FRAME) },
  handshakeTimeoutMs: { value: LIMITS.handshakeTimeoutMs, setting: 'limits.handshakeTimeoutMs' },
  maxPendingConnections: {
    value: LIMITS.maxPendingPeerConnections,
    setting: 'limits.maxPendingPeerConnections',
  },
  maxPendingPerAddress: {
    value: LIMITS.maxConnectionsPerAddress,
    setting: 'limits.maxConnectionsPerAddress',
  },
  ...rest,
});

/**
 * Dial a member's peer port as member `as` (lower id than the target) and complete the handshake with
 * `secrets`: the connection, ready for CONSENSUS frames, or the refusal reason.
 */
export const dialAsPeer = async (
  target: MemberConfig,
  members: readonly MemberConfig[],
  as: number,
  secrets: readonly Uint8Array[] = TEST_SECRETS,
): Promise<{ connection: FramedConnection; closed: Promise<string> }> => {
  const connection = await dial(target.host, target.peerPort, {
    maxFrameBytes: 64 << 20,
    name: `member ${target.id}`,
  });
  const closed = new Promise<string>((resolve) => connection.once('close', resolve));
  const membersString = formatMembersString(members);
  const own = newNonce();
  connection.send(PeerKind.HELLO, { memberId: as, members: membersString, nonce: own });
  const reply = await Promise.race([
    new Promise<{ kind: number; body: unknown }>((resolve) =>
      connection.once('frame', (kind, body) => resolve({ kind, body })),
    ),
    closed.then((reason) => {
      throw new Error(`refused before HELLO: ${reason}`);
    }),
  ]);
  const hello = parseHello(reply.kind, reply.body);
  if (typeof hello === 'string') throw new Error(hello);
  const proof = signProof(secrets, {
    role: 'dial',
    from: as,
    to: target.id,
    members: membersString,
    challenge: hello.nonce,
    own,
  });
  connection.send(PeerKind.PROOF, { proof });
  return { connection, closed };
};

/** Send a consensus message on an authenticated connection, as the wire carries it. */
export const sendConsensus = (connection: FramedConnection, message: PeerMessage | object): void => {
  connection.send(PeerKind.CONSENSUS, message);
};

/** Write raw bytes to `host:port` and resolve with everything the other side sent before it closed. */
export const rawExchange = (host: string, port: number, bytes: readonly Buffer[]): Promise<string> =>
  new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let data = Buffer.alloc(0);
    socket.on('data', (d) => {
      data = Buffer.concat([data, d]);
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(data.toString('latin1')));
    socket.once('connect', () => {
      for (const b of bytes) socket.write(b);
    });
  });

export { encodeFrame };
