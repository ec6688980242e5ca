import { expect } from 'chai';
import { unpack } from 'msgpackr';
import { encodeKvCommand, type KvResult } from '../../actors/services/kv.ts';
import { ChorusClient } from '../../runtime/client/client.ts';
import { LocalCluster } from '../../runtime/local-cluster.ts';

describe('back-pressure (real members)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster | undefined;
  after(async () => cluster?.close());

  it('R5: past the backlog bound the leader answers BUSY; clients back off and resend; every write applied once', async () => {
    cluster = await LocalCluster.start({ members: 3, overrides: { maxUnappliedEntries: 2 } });
    await cluster.waitForLeader();
    const clients = await Promise.all(
      [1, 2, 3, 4].map((seed) => ChorusClient.connect({ endpoints: cluster!.endpoints(), seed })),
    );
    // Each write is a compare-and-set from "absent": applied twice, its second application would answer ok: false.
    const writes = clients.flatMap((client, c) =>
      Array.from({ length: 40 }, (_, i) =>
        client.send(encodeKvCommand({ op: 'cas', key: `c${c}-${i}`, expected: null, value: `${i}` })),
      ),
    );
    const replies = (await Promise.all(writes)).map((bytes) => unpack(bytes) as KvResult);
    expect(
      replies.every((r) => 'ok' in r && r.ok),
      'every write applied exactly once',
    ).to.equal(true);
    const busy = clients.reduce((n, c) => n + c.busyAnswers, 0);
    expect(busy, 'the leader pushed back at least once').to.be.greaterThan(0);
    for (const [c, client] of clients.entries()) {
      const value = unpack(await client.send(encodeKvCommand({ op: 'get', key: `c${c}-39` }))) as {
        value: string;
      };
      expect(value.value).to.equal('39');
    }
    await Promise.all(clients.map((c) => c.close()));
  });
});
