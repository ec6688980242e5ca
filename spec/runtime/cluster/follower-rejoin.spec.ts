// Issue 10, section 3, at process level: a follower paused (SIGSTOP) while the leader snapshots and purges
// its log past the follower's, then resumed (SIGCONT). On resume it must install the leader's snapshot
// and append what follows it, in that order (it used to crash: "append: entries[0] has index 16008 but
// the log expects 15850"), catch up, and nothing acknowledged may be lost. Snapshots come from the
// member's own policy, every `snapshot.everyEntries` entries applied. (Not named P2 or N1: a paused
// process is neither a network cut nor a crash.)

import { expect } from 'chai';
import { caughtUp, status } from './member-status.ts';
import {
  closeAll,
  connectClient,
  expectAllPresent,
  freeze,
  TestCluster,
  Writers,
  writeOnce,
} from './support.ts';

const EVERY_ENTRIES = 150;
/**
 * While a follower is paused the leader keeps sending it what it has, up to its bound on bytes in flight
 * (256 KiB) plus one batch (64 KiB); on resume the follower reads all of it. Values of 8 KiB keep that
 * within 40 entries, so a leader whose log starts more than twice as far past the pause point has purged
 * what the follower could still get: only the snapshot can bring it back.
 */
const BIG_VALUE = 'x'.repeat(8 * 1024);
const SENT_WHILE_PAUSED = (2 * (256 + 64) * 1024) / BIG_VALUE.length;

describe('process level: a follower paused while the leader purges past its log', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  /** Members no longer running, and every record at level error (50) or fatal (60). */
  const troubles = (): string[] =>
    cluster.cluster.views.flatMap((view) => [
      ...(view.running ? [] : [`member ${view.id} is not running`]),
      ...view.lines
        .filter((line) => /"level":(50|60)/.test(line))
        .map((line) => `member ${view.id}: ${line}`),
    ]);

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
      connectClient(cluster, { seed: 73 }),
    ]);
    try {
      const before = new Writers(clients.slice(0, 2), 'rejoin/before', 8).start();
      await before.acknowledge(40, cluster);
      await before.stop(); // while paused, only the big writes below: what the leader can send stays bounded
      const big = new Map<string, string>();
      freeze(cluster, paused, 'SIGSTOP');
      let atPause = Number.POSITIVE_INFINITY;
      try {
        // The follower holds at most what the leader had once it was paused.
        atPause = (await status(cluster, leader)).log.lastIndex;
        // The leader's policy snapshots and purges while the follower is paused, until its log starts
        // past everything the follower holds: only the snapshot can bring the follower back.
        for (let n = 0; (await status(cluster, leader)).log.firstIndex <= atPause + SENT_WHILE_PAUSED; n++) {
          await writeOnce(clients[2], `rejoin/big/${n}`, BIG_VALUE);
          big.set(`rejoin/big/${n}`, BIG_VALUE);
        }
      } finally {
        freeze(cluster, paused, 'SIGCONT');
      }
      const writers = new Writers(clients.slice(0, 2), 'rejoin/after', 8).start();
      await cluster.cluster
        .until(
          () =>
            troubles().length > 0 ||
            cluster.cluster.views[paused].lines.some((line) =>
              line.includes('snapshot installed from the leader'),
            ),
          `member ${paused} to install the leader snapshot after it resumed`,
          60_000,
        )
        .catch((error: Error) => {
          const recent = cluster.cluster.views[paused].lines.slice(-8).join('\n');
          throw new Error(`${error.message}; its last records:\n${recent}`);
        });
      expect(troubles(), 'members stopped, or records at level error or above').to.deep.equal([]);
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
      ).to.be.above(atPause + SENT_WHILE_PAUSED);
      expect(troubles(), 'members stopped, or records at level error or above').to.deep.equal([]);
      expect(before.failures, 'writes that failed').to.deep.equal([]);
      await expectAllPresent(clients[0], new Map([...before.acknowledged, ...big, ...writers.acknowledged]));
    } finally {
      await closeAll(clients);
    }
  });
});
