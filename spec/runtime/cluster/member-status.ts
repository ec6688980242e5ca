// A running member's own view of itself, asked over its admin socket (what `chorus tool DIR status` shows).

import { adminRequest } from '../../../runtime/admin.ts';
import type { MemberStatus } from '../../../runtime/member.ts';
import { eventually } from '../../support/ports.ts';
import type { TestCluster } from './support.ts';

/** What the admin `status` command answers (the `describe` view): MemberStatus plus the store's state. */
export interface DescribedStatus extends MemberStatus {
  readonly snapshotIndex: number;
  readonly log: { readonly firstIndex: number; readonly lastIndex: number; readonly durableIndex: number };
}

export const status = async (cluster: TestCluster, id: number): Promise<DescribedStatus> =>
  (await adminRequest(cluster.cluster.memberDir(id), { command: 'status' })) as DescribedStatus;

/** Wait until member `id` has applied everything up to `index` (its own status says so). */
export const caughtUp = (
  cluster: TestCluster,
  id: number,
  index: number,
  timeoutMs = 10_000,
): Promise<void> =>
  eventually(
    async () => (await status(cluster, id)).appliedIndex >= index,
    `member ${id} to apply up to index ${index}`,
    timeoutMs,
    25,
  );
