// Helpers for the attack tests against real members: what every member reports (term, leader, log) before
// and after an attack, and a check of every member's log on disk for entries no client sent.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { openMemberStore } from '../../persistence/index.ts';
import { adminRequest } from '../../runtime/admin.ts';
import { PEER_SECRET_FILE } from '../../runtime/local-cluster.ts';
import type { TestCluster } from '../runtime/cluster/support.ts';

export interface MemberReport {
  readonly term: number;
  readonly leaderId: number | null;
  readonly lastIndex: number;
}

/** What each member says about itself, through its admin socket. */
export const reports = async (cluster: TestCluster): Promise<MemberReport[]> =>
  Promise.all(
    cluster.cluster.views.map(async (view) => {
      const status = (await adminRequest(cluster.cluster.memberDir(view.id), {
        command: 'status',
      })) as MemberReport;
      return { term: status.term, leaderId: status.leaderId, lastIndex: status.lastIndex };
    }),
  );

/** Every member up, in the same term as before, with the same leader: no election happened. */
export const expectUndisturbed = async (
  cluster: TestCluster,
  before: readonly MemberReport[],
): Promise<void> => {
  for (const view of cluster.cluster.views) expect(view.running, `member ${view.id} running`).to.equal(true);
  const after = await reports(cluster);
  expect(
    after.map((r) => [r.term, r.leaderId]),
    'terms and leaders of every member',
  ).to.deep.equal(before.map((r) => [r.term, r.leaderId]));
};

/** The cluster's peer secret (the file LocalCluster wrote), as members use it. */
export const clusterSecrets = (cluster: TestCluster): Buffer[] => [
  Buffer.from(readFileSync(join(cluster.cluster.dir, PEER_SECRET_FILE), 'utf8').trim()),
];

/** Stop every member, then read each one's whole log from disk: no entry may carry `marker`. */
export const expectNoForgedEntries = async (cluster: TestCluster, marker: string): Promise<void> => {
  await Promise.all(cluster.cluster.views.map((view) => cluster.cluster.kill(view.id)));
  const needle = Buffer.from(marker);
  for (const view of cluster.cluster.views) {
    const store = await openMemberStore(cluster.cluster.memberDir(view.id));
    try {
      const log = store.log;
      const entries = log.lastIndex >= log.firstIndex ? log.read(log.firstIndex, log.lastIndex) : [];
      const forged = entries.filter((entry) => Buffer.from(entry.payload).includes(needle));
      expect(
        forged.map((e) => e.index),
        `forged entries in member ${view.id}'s log`,
      ).to.deep.equal([]);
      expect(store.nodeState.load().currentTerm, `member ${view.id}'s saved term`).to.be.below(1000);
    } finally {
      await store.close();
    }
  }
};

/** Warn-level records a member printed that contain `text` (what an operator sees). */
export const warnings = (cluster: TestCluster, id: number, text: string): string[] =>
  cluster.cluster.views[id].lines.filter((line) => {
    try {
      const record = JSON.parse(line) as { level?: number; msg?: string };
      return (record.level ?? 0) >= 40 && String(record.msg).includes(text);
    } catch {
      return false;
    }
  });
