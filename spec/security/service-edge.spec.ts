// Attacks on the service edge, replayed against real members running the example counter service: a raw
// client (no client library, so none of its checks) sends commands of every bad shape. Each is refused by
// the leader with BAD_COMMAND before the log; the cluster stays up and writable, and the counter holds
// exactly what valid commands made it.

import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pack, unpack } from '../../actors/actor-runtime/protocol.ts';
import { counterService } from '../../examples/counter-service.ts';
import { serviceClient } from '../../runtime/actor-runtime/service-client.ts';
import { ClientKind } from '../../runtime/wire/client-frames.ts';
import { connectClient, RawConnection, TestCluster } from '../runtime/cluster/support.ts';

const SERVICES = fileURLToPath(new URL('../../examples/counter-service.ts', import.meta.url));

describe('security: the service edge on real members', function () {
  this.timeout(60_000);
  let cluster: TestCluster | null = null;

  after(async () => {
    await cluster?.close();
    cluster = null;
  });

  it('raw commands of every bad shape, runtime-reserved events and an oversize command are refused before the log', async () => {
    cluster = await TestCluster.start({
      overrides: { services: SERVICES, workerShards: 1, maxFrameBytes: 65_536 },
    });
    await cluster.whole();
    const leader = cluster.cluster.leader() as number;
    const raw = await RawConnection.open(cluster.endpoint(leader));
    const sessionId = await raw.openSession();
    let correlationId = 0;
    const send = async (body: Uint8Array) => {
      const id = ++correlationId;
      raw.request({ type: 'SESSION_MESSAGE', sessionId, correlationId: id, lowestAwaited: id, body });
      const frame = await raw.take(
        (f) => f.kind === ClientKind.REPLY && f.body.correlationId === id,
        `reply ${id}`,
      );
      return unpack(frame.body.payload as Uint8Array) as {
        ok: boolean;
        value?: unknown;
        error?: { code: string; message: string };
      };
    };
    const refused = async (body: Uint8Array, why: RegExp) => {
      const reply = await send(body);
      expect(reply.ok, JSON.stringify(reply)).to.equal(false);
      expect(reply.error?.code).to.equal('BAD_COMMAND');
      expect(reply.error?.message).to.match(why);
    };

    expect(await send(counterService.commandBody({ type: 'INCREMENT', id: 'acct', by: 5 }))).to.deep.equal({
      ok: true,
      value: 5,
    });
    // The routed shape straight to an actor (what a raw client could once send), with a string amount.
    await refused(pack(['counters/counter/acct', { type: 'INCREMENT', by: '01e9' }]), /no service/);
    await refused(pack(['counters', { type: 'INCREMENT', id: 'acct', by: '05' }]), /by/);
    await refused(pack(['counters', { type: 'INCREMENT', id: 'acct', by: -1e300 }]), /by/);
    // A delayed-transition event of XState's, and the runtime's own effect completion.
    await refused(
      pack(['counters', { type: 'xstate.after.REMINDER.counter.WAITING', id: 'acct' }]),
      /unknown/,
    );
    await refused(pack(['counters', { type: 'chorus.effect.done', id: 'acct', result: 1 }]), /unknown/);
    await refused(pack(['counters', { type: 'INCREMENT', id: '', by: 1 }]), /name the counter/);
    await refused(pack({ __proto__: { polluted: true }, type: 'INCREMENT' }), /\[serviceName, command\]/);
    await refused(new Uint8Array([0x92, 0xa1]), /not msgpack/);
    // Larger than one log entry may carry (maxFrameBytes less the envelope), though within the frame limit.
    await refused(new Uint8Array(cluster.cluster.config.maxFrameBytes - 900), /maxFrameBytes/);

    // The cluster is up and writable, and the counter holds only what the valid command made it.
    const client = await connectClient(cluster);
    try {
      const counters = serviceClient(client, counterService);
      expect(await counters.command({ type: 'INCREMENT', id: 'acct', by: 1 })).to.equal(6);
      expect(cluster.cluster.leader()).to.equal(leader);
    } finally {
      await client.close();
    }
  });
});
