import { expect } from 'chai';
import { unpack } from 'msgpackr';
import { encodeKvCommand } from '../../actors/services/kv.ts';
import { adminRequest } from '../../runtime/admin.ts';
import { ChorusClient } from '../../runtime/client/client.ts';
import { LocalCluster } from '../../runtime/local-cluster.ts';

describe('snapshot policy (real members)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('each member snapshots itself every N entries, purges its log, and restarts from the snapshot with nothing lost', async () => {
    cluster = await LocalCluster.start({
      members: 3,
      overrides: { snapshot: { everyEntries: 40, keep: 2 } },
    });
    await cluster.waitForLeader();
    const client = await ChorusClient.connect({ endpoints: cluster.endpoints() });
    for (let i = 0; i < 150; i++)
      await client.send(encodeKvCommand({ op: 'put', key: `k${i}`, value: `v${i}` }));
    const described = await Promise.all(
      cluster.views.map(
        (v) =>
          adminRequest(cluster!.memberDir(v.id), { command: 'status' }) as Promise<{
            snapshotIndex: number;
            log: { firstIndex: number };
            snapshotSets: unknown[];
          }>,
      ),
    );
    for (const d of described) {
      expect(d.snapshotIndex, 'a snapshot by policy').to.be.at.least(40);
      expect(d.log.firstIndex, 'the log before it purged').to.be.greaterThan(1);
      expect(d.snapshotSets.length, 'old sets pruned to keep').to.be.at.most(2);
    }
    // Restart one follower: it recovers from its snapshot plus the log after it, and serves the same data.
    const leader = cluster.leader()!;
    const follower = cluster.views.find((v) => v.id !== leader)!.id;
    await cluster.kill(follower);
    cluster.startMember(follower);
    await cluster.until(
      () => cluster!.views[follower].electionState === 'CLOSED',
      'the follower back in the cluster',
    );
    await cluster.kill(leader);
    await cluster.waitForLeader();
    for (const i of [0, 77, 149]) {
      const reply = unpack(await client.send(encodeKvCommand({ op: 'get', key: `k${i}` }))) as {
        value: string;
      };
      expect(reply.value).to.equal(`v${i}`);
    }
    await client.close();
  });
});
