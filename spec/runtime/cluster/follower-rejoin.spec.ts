// Issue 10, section 3, at process level: a follower paused (SIGSTOP) while the leader snapshots and purges
// its log past the follower's, then resumed (SIGCONT). On resume it must install the leader's snapshot
// and append what follows it, in that order (it used to crash: "append: entries[0] has index 16008 but
// the log expects 15850"), catch up, and nothing acknowledged may be lost. Snapshots come from the
// member's own policy, every `snapshot.everyEntries` entries applied.

import { expect } from 'chai';
import { eventually } from '../../support/ports.ts';
import { caughtUp, status } from './member-status.ts';
import { closeAll, connectClient, expectAllPresent, freeze, TestCluster, Writers } from './support.ts';

const EVERY_ENTRIES = 150;

describe('process level: a follower paused while the leader purges past its log', function () {
  this.timeout(180_000);
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start({
      overrides: { snapshot: { everyEntries: EVERY_ENTRIES, everyBytes: null, keep: 2 } },
    });
  });
  after(() => cluster?.close());

  it('resumes, installs the leader snapshot, catches up; no member exits; nothing acknowledged is lost', async () => {
    const leader = await cluster.whole();
    const paused = cluster.cluster.views.map((v) => v.id).find((id) => id !== leader) as number;
    const clients = await Promise.all([
      connectClient(cluster, { seed: 71 }),
      connectClient(cluster, { seed: 72 }),
    ]);
    try {
      const writers = new Writers(clients, 'rejoin', 8).start();
      await writers.acknowledge(40, cluster);
      const before = await status(cluster, paused);
      freeze(cluster, paused, 'SIGSTOP');
      try {
        // The leader's policy snapshots and purges while the follower is paused, until its log starts
        // past everything the follower holds: only the snapshot can bring the follower back.
        await eventually(
          async () => (await status(cluster, leader)).log.firstIndex > before.log.lastIndex + 1,
          "the leader's log purged past the paused follower's last entry",
          120_000,
          50,
        );
        await writers.acknowledge(2 * EVERY_ENTRIES, cluster, 60_000); // more snapshots, more entries after them
      } finally {
        freeze(cluster, paused, 'SIGCONT');
      }
      await cluster.cluster.until(
        () =>
          cluster.cluster.views[paused].lines.some((line) =>
            line.includes('snapshot installed from the leader'),
          ),
        `member ${paused} to install the leader snapshot after it resumed`,
        60_000,
      );
      await writers.acknowledge(40, cluster);
      await writers.stop();
      expect(writers.failures, 'writes that failed').to.deep.equal([]);

      const current = cluster.cluster.leader() as number;
      const commit = (await status(cluster, current)).commitIndex;
      await caughtUp(cluster, paused, commit, 60_000);
      const rejoined = await status(cluster, paused);
      expect(
        rejoined.log.firstIndex,
        "the resumed follower's log starts after a leader snapshot",
      ).to.be.above(before.log.lastIndex + 1);
      for (const view of cluster.cluster.views) {
        expect(view.running, `member ${view.id} still running`).to.equal(true);
        const fatal = view.lines.filter((line) => /"level":(50|60)/.test(line));
        expect(fatal, `member ${view.id}: records at level error or above`).to.deep.equal([]);
      }
      await expectAllPresent(clients[0], writers.acknowledged);
    } finally {
      await closeAll(clients);
    }
  });
});
