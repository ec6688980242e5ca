// The worked example of docs/services.md (examples/bank-service.ts) on a real 3-member cluster: accounts
// as statecharts, transfers as actor-to-actor messages through the log, a freeze that an `after` timer
// lifts, a closed account that refunds what it is sent. The leader is SIGKILLed while transfers are in
// flight; afterwards no money was made or lost, and every member replays its own log to the same accounts.

import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type BankReply, bankService } from '../../../examples/bank-service.ts';
import { serviceClient } from '../../../runtime/actor-runtime/service-client.ts';
import type { ChorusClient } from '../../../runtime/client/client.ts';
import { eventually } from '../../support/ports.ts';
import { caughtUp, status } from '../cluster/member-status.ts';
import { connectClient, FAILOVER_MS, replayEachMember, TestCluster } from '../cluster/support.ts';

const SERVICES = fileURLToPath(new URL('../../../examples/bank-service.ts', import.meta.url));
const ACCOUNTS = ['a', 'b', 'c', 'd', 'e'] as const;
const OPENING = 1000;
/** A freeze long enough to refuse a transfer, short enough to lift during the test. */
const FREEZE_MS = 1500;

type Account = { state: string; balance: number };

describe('the bank example on a 3-member cluster (docs/services.md)', function () {
  this.timeout(60_000);
  let cluster: TestCluster | null = null;
  let client: ChorusClient | null = null;

  after(async () => {
    await client?.close().catch(() => {});
    await cluster?.close();
  });

  it('N2: transfers in flight when the leader is killed conserve the total; every member replays to the same accounts', async () => {
    cluster = await TestCluster.start({ overrides: { services: SERVICES, workerShards: 2 } });
    await cluster.whole();
    client = await connectClient(cluster);
    const bank = serviceClient(client, bankService);
    const command = async (c: Parameters<typeof bank.command>[0]) => (await bank.command(c)) as BankReply;
    const get = async (account: string) => (await command({ type: 'GET', account })) as Account;

    for (const account of ACCOUNTS) {
      expect(await command({ type: 'DEPOSIT', account, amount: OPENING })).to.deep.equal({
        ok: true,
        state: 'OPEN',
        balance: OPENING,
      });
    }
    // An overdraft is refused and changes nothing; a closed account refuses deposits.
    expect(await command({ type: 'WITHDRAW', account: 'a', amount: OPENING + 1 })).to.deep.equal({
      ok: false,
      refused: 'overdraft',
      balance: OPENING,
    });
    expect(await command({ type: 'CLOSE', account: 'closed' })).to.deep.include({
      ok: true,
      state: 'CLOSED',
    });
    expect(await command({ type: 'DEPOSIT', account: 'closed', amount: 5 })).to.deep.include({
      refused: 'closed',
    });
    // A frozen account refuses transfers out until its `after` timer lifts the freeze.
    expect(await command({ type: 'FREEZE', account: 'b', forMs: FREEZE_MS })).to.deep.include({
      state: 'FROZEN',
    });
    expect(await command({ type: 'TRANSFER', account: 'b', to: 'a', amount: 1 })).to.deep.include({
      refused: 'frozen',
    });

    // A ring of transfers, some to the closed account (refunded), pipelined; the leader dies mid-flow.
    const transfers = Array.from({ length: 60 }, (_, i) => ({
      type: 'TRANSFER' as const,
      account: ACCOUNTS[i % ACCOUNTS.length],
      to: i % 7 === 3 ? 'closed' : ACCOUNTS[(i * 3 + 1) % ACCOUNTS.length],
      amount: 1 + (i % 9) * 10,
    })).filter((t) => t.account !== t.to);
    const leader = cluster.cluster.leader() as number;
    const replies = transfers.map((t) => command(t));
    await replies[10];
    await cluster.cluster.kill(leader);
    const answered = await Promise.all(replies);
    for (const r of answered) {
      if (!r.ok)
        expect(r.refused, 'a transfer refused for a reason the machine gives').to.be.oneOf([
          'frozen',
          'overdraft',
        ]);
    }
    expect(answered.filter((r) => r.ok).length, 'transfers applied').to.be.above(transfers.length / 2);

    // Credits and refunds are messages of their own: wait until none is in flight (the total is whole).
    const total = async () => {
      let sum = 0;
      for (const account of [...ACCOUNTS, 'closed'])
        sum += (await command({ type: 'GET', account })).balance ?? 0;
      return sum;
    };
    await eventually(
      async () => (await total()) === ACCOUNTS.length * OPENING,
      'the total conserved',
      10 * FAILOVER_MS + 5000,
      100,
    );
    // The freeze lifted (its timer survived the leader's death) and the closed account kept nothing.
    await eventually(
      async () => (await get('b')).state === 'OPEN',
      'account b unfrozen',
      FREEZE_MS + 10 * FAILOVER_MS,
      100,
    );
    expect(await command({ type: 'GET', account: 'closed' })).to.deep.equal({
      ok: true,
      state: 'CLOSED',
      balance: 0,
    });

    // Every member (the killed one restarted and caught up) replays its own log to the same accounts.
    const live: Record<string, Account> = {};
    for (const account of [...ACCOUNTS, 'closed']) {
      const { state, balance } = (await command({ type: 'GET', account })) as Account;
      live[account] = { state, balance };
    }
    const now = await cluster.whole();
    const applied = (await status(cluster, now)).appliedIndex;
    for (const v of cluster.cluster.views) await caughtUp(cluster, v.id, applied);
    await replayEachMember(cluster, SERVICES, async (runtime, id) => {
      const replayed: Record<string, Account> = {};
      for (const account of Object.keys(live)) {
        const s = (await runtime.pool.actorState(`bank/account/${account}`)) as {
          value: string;
          context: { balance: number };
        };
        replayed[account] = { state: s.value, balance: s.context.balance };
      }
      expect(replayed, `member ${id} replayed`).to.deep.equal(live);
    });
  });
});
