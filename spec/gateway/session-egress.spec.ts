// Session egress in member processes: a service pushes a message to a client session once the entry that
// decided it is committed (`notify`), and a session's close reaches the service's actors (`sessionClosed`)
// on every member alike — the live state and each member's own replay of its log. The bell service
// (spec/actors/actor-runtime/bell-service.ts) on a 3-member LocalCluster.

import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { serviceClient } from '../../runtime/actor-runtime/service-client.ts';
import type { ChorusClient } from '../../runtime/client/client.ts';
import { bellService } from '../actors/actor-runtime/bell-service.ts';
import { connectClient, replayEachMember, TestCluster } from '../runtime/cluster/support.ts';
import { eventually } from '../support/ports.ts';

const SERVICES = fileURLToPath(new URL('../actors/actor-runtime/bell-service.ts', import.meta.url));

interface BellView {
  subscribers: number[];
  closes: [number, boolean][];
  rings: number;
}

describe('session egress in member processes (notify, sessionClosed)', function () {
  this.timeout(60_000);
  let cluster: TestCluster | null = null;
  const clients: ChorusClient[] = [];

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await cluster?.close();
  });

  it("an actor's notify reaches its session once committed, and no other; a session's close reaches the actors on every member, live and in replay", async () => {
    cluster = await TestCluster.start({ overrides: { services: SERVICES, workerShards: 2 } });
    await cluster.whole();
    const listener = await connectClient(cluster);
    const ringer = await connectClient(cluster);
    clients.push(listener, ringer);
    const heard: unknown[] = [];
    const ringerHeard: unknown[] = [];
    // An application handler that throws stops neither the next handler nor the client: its error is
    // thrown again on its own, after the client's handling (an uncaught exception, caught here).
    const thrown: Error[] = [];
    const mochaHandlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', (error) => thrown.push(error));
    listener.onMessage(() => {
      throw new Error('a bug in the application');
    });
    listener.onMessage((m) => heard.push(m));
    ringer.onMessage((m) => ringerHeard.push(m));
    const bells = serviceClient(listener, bellService);
    const ringing = serviceClient(ringer, bellService);

    expect(await bells.command({ type: 'SUBSCRIBE', channel: 'a' })).to.deep.equal([listener.sessionId]);
    expect(await ringing.command({ type: 'RING', channel: 'a', text: 'hello' })).to.equal(1);
    try {
      await eventually(() => heard.length === 1, 'the listener hears the ring', 5_000);
      await eventually(() => thrown.length === 1, "the handler's error thrown again", 5_000);
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const handler of mochaHandlers) process.on('uncaughtException', handler);
    }
    expect(heard).to.deep.equal([{ type: 'RING', text: 'hello', ring: 1 }]);
    expect(thrown.map((e) => e.message)).to.deep.equal(['a bug in the application']);
    expect(ringerHeard, 'the ringer is no subscriber').to.deep.equal([]);

    // A throwing actor's notifications are dropped with its transition.
    const refused = await ringing.send({ type: 'RING_THEN_THROW', channel: 'a' });
    expect(refused.ok).to.equal(false);

    const listenerSession = listener.sessionId as number;
    await listener.close();
    const closed = async () => (await ringing.command({ type: 'LIST', channel: 'a' })) as BellView;
    await eventually(
      async () => (await closed()).subscribers.length === 0,
      'the close unsubscribed it',
      5_000,
    );
    const live = await closed();
    expect(live.closes).to.deep.equal([[listenerSession, true]]);
    expect(await ringing.command({ type: 'RING', channel: 'a', text: 'anyone?' })).to.equal(0);
    expect(heard, 'nothing after the close').to.have.length(1);
    await ringer.close();

    // Every member's own log, replayed on one shard, holds the same bell.
    await replayEachMember(cluster, SERVICES, async (runtime, id) => {
      const state = (await runtime.pool.actorState('bells/bell/a')) as { context: BellView };
      expect(state.context.closes, `member ${id} replayed`).to.deep.include.members(live.closes);
      expect(state.context.subscribers, `member ${id} replayed`).to.deep.equal([]);
      expect(state.context.rings, `member ${id} replayed`).to.equal(2);
    });
  });
});
