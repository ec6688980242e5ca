// The cluster tool's commands on one member (status, snapshot, suspend, resume, transfer-leadership): each
// becomes an input of the consensus module, and the answer waits until the module shows its effect.

import { performance } from 'node:perf_hooks';
import type { ConsensusModule, ModuleInput } from '../actors/consensus/consensus-module.ts';
import type { AdminRequest } from './wire/admin-frames.ts';

export interface AdminHost {
  readonly memberId: number;
  readonly module: ConsensusModule;
  input(input: ModuleInput): void;
  connectedPeers(): readonly number[];
  describe(): object;
}

/** Poll `check` every few ms until it holds; rejects naming `what` after `timeoutMs`. */
const waitFor = async (check: () => boolean, what: string, timeoutMs = 5000): Promise<void> => {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

export const handleAdmin = async (host: AdminHost, request: AdminRequest): Promise<unknown> => {
  const node = () => host.module.node;
  switch (request.command) {
    case 'status':
      return host.describe();
    case 'snapshot': {
      const before = node().snapshotIndex;
      const at = node().appliedIndex;
      if (at <= before)
        return { snapshotIndex: before, taken: false, reason: 'nothing applied since the last snapshot' };
      host.input({ type: 'REQUEST_SNAPSHOT' });
      await waitFor(() => node().snapshotIndex >= at, `a snapshot at ${at}`);
      return { snapshotIndex: node().snapshotIndex, taken: true };
    }
    case 'suspend':
      host.input({ type: 'SUSPEND' });
      await waitFor(() => node().moduleState === 'SUSPENDED', 'suspend');
      return { moduleState: node().moduleState };
    case 'resume':
      host.input({ type: 'RESUME' });
      await waitFor(() => node().moduleState === 'ACTIVE', 'resume');
      return { moduleState: node().moduleState };
    case 'transfer-leadership': {
      if (host.module.role !== 'LEADER')
        throw new Error(
          `member ${host.memberId} is not the leader (leader: ${node().leaderId ?? 'unknown'})`,
        );
      const members: readonly number[] = node().members;
      if (request.to !== undefined && (!members.includes(request.to) || request.to === host.memberId)) {
        throw new Error(
          request.to === host.memberId
            ? `member ${request.to} already leads; name another member (members: ${members.join(', ')})`
            : `no member ${request.to} (members: ${members.join(', ')})`,
        );
      }
      const to = request.to ?? host.connectedPeers()[0];
      if (to === undefined) throw new Error('no follower is connected to take over');
      const from = host.memberId;
      host.input({ type: 'TRANSFER_LEADERSHIP', to });
      // Answered once this member follows a new leader, so the answer names it (and its term).
      await waitFor(
        () => host.module.role !== 'LEADER' && node().leaderId !== null && node().leaderId !== from,
        `leadership transfer to member ${to}`,
      );
      return { from, to, leaderId: node().leaderId, term: node().term };
    }
    default:
      throw new Error(`unknown admin command "${String((request as { command: unknown }).command)}"`);
  }
};
