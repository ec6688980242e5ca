// The bank service (examples/bank-service.ts) on a TestCluster: a transfer interrupted by a leader kill
// — the debit applied and answered, the credit still in the leader's outbox, not yet in the log — ends
// with the money conserved on every member; random transfers and freezes under the seed's random faults
// conserve it too; and a copy of the service with a planted bug (a transfer of 50 or more credited twice)
// is reported with the seed that replays it, and replaying that seed reports the same.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import * as bank from '../../examples/bank-service.ts';
import { type AccountContext, bankService } from '../../examples/bank-service.ts';
import {
  sweepSeeds,
  TestCluster,
  TestClusterFailure,
  type TestClusterOptions,
} from '../../runtime/testkit/cluster/index.ts';

const ACCOUNTS = ['alice', 'bob', 'carol', 'dave'];
const OPENING = 100;

/** An account's balance on one member (undefined: the member has no such account). */
const balance = (cluster: TestCluster, member: number, account: string): number | undefined =>
  (
    cluster.actorState(member, bankService.name, 'account', account) as
      | { context?: AccountContext }
      | undefined
  )?.context?.balance;

/** The invariant: on every running member, the accounts hold exactly what was deposited, none below zero. */
const conserved =
  (total: number) =>
  (cluster: TestCluster): string | undefined => {
    for (const member of cluster.memberIds) {
      if (cluster.appliedIndex(member) === null) continue;
      const balances = ACCOUNTS.map((account) => balance(cluster, member, account) ?? 0);
      const sum = balances.reduce((a, b) => a + b, 0);
      if (sum !== total || balances.some((b) => b < 0)) {
        return `member ${member} holds ${sum} in all (${ACCOUNTS.map((a, i) => `${a} ${balances[i]}`).join(', ')}); ${total} was deposited`;
      }
    }
    return undefined;
  };

/** Open every account with a deposit, faults off, and wait for the acknowledgements. */
const openAccounts = async (cluster: TestCluster) => {
  const teller = cluster.serviceClient(bankService);
  for (const account of ACCOUNTS) {
    await cluster.run(teller.command({ type: 'DEPOSIT', account, amount: OPENING }));
  }
  return teller;
};

/** Random transfers and freezes from two clients while the seed's random faults strike, then heal. */
const randomTraffic = async (cluster: TestCluster, transfers: number): Promise<void> => {
  await openAccounts(cluster);
  const clients = [cluster.serviceClient(bankService), cluster.serviceClient(bankService)];
  cluster.faults({
    forMs: 4000,
    intensity: 0.6,
    kinds: ['crash', 'isolate', 'partition', 'pause', 'lossy-network'],
  });
  const { random } = cluster;
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < transfers; i++) {
    // Spread over about two seconds of virtual time, so the faults strike while money moves.
    if (i % 5 === 4) await cluster.advance(random.int(50, 300));
    const account = random.pick(ACCOUNTS);
    const client = clients[i % clients.length];
    const command = random.chance(0.1)
      ? client.send({ type: 'FREEZE', account, forMs: random.int(100, 1500) })
      : client.send({
          type: 'TRANSFER',
          account,
          to: random.pick(ACCOUNTS.filter((a) => a !== account)),
          amount: random.int(1, 60),
        });
    work.push(command.catch(() => undefined)); // an unknown outcome: the invariant decides
  }
  await cluster.run(Promise.all(work), { withinMs: 120_000 });
  cluster.heal();
  await cluster.runUntilIdle();
};

/** A copy of examples/bank-service.ts in a scratch directory, with a transfer of 50 or more credited twice. */
const plantDoubleCredit = (): { dir: string; module: string } => {
  const source = readFileSync(resolve('examples/bank-service.ts'), 'utf8');
  const credit = source.indexOf('CREDIT: {');
  const apply = 'context.balance + event.amount';
  const at = source.indexOf(apply, credit);
  expect(credit, 'the CREDIT handler is there').to.be.greaterThan(0);
  expect(at, 'the CREDIT handler adds the amount').to.be.greaterThan(credit);
  const planted =
    source.slice(0, at) +
    'context.balance + event.amount * (event.amount >= 50 ? 2 : 1)' +
    source.slice(at + apply.length);
  // Inside the checkout (tmp/ is ignored by git), so its packages (xstate, zod) resolve as the original's do.
  mkdirSync(resolve('tmp'), { recursive: true });
  const dir = mkdtempSync(join(resolve('tmp'), 'planted-bank-'));
  const module = join(dir, 'bank-service.ts');
  // Its imports point back into this checkout, so it runs on the same runtime.
  writeFileSync(module, planted.replaceAll("from '../", `from '${resolve('.')}/`));
  return { dir, module };
};

describe('examples: the bank service on a TestCluster', function () {
  this.timeout(120_000);

  it('a transfer interrupted by a leader kill (debited and answered, its credit not yet in the log) conserves the total on every member', async () => {
    const cluster = new TestCluster({
      services: bank,
      seed: 11,
      invariants: { 'total balance conserved': conserved(OPENING * ACCOUNTS.length) },
    });
    const teller = await openAccounts(cluster);
    const leader = await cluster.waitForLeader();
    let killedAt: number | null = null;
    let creditsPending = 0;
    // The moment the leader has applied the debit, the credit is an actor message in its outbox only.
    cluster.when(
      () => cluster.pendingWork(leader).sends > 0,
      () => {
        killedAt = cluster.now;
        creditsPending = cluster.pendingWork(leader).sends;
        cluster.kill(leader);
      },
    );
    const reply = await cluster.run(
      teller.command({ type: 'TRANSFER', account: 'alice', to: 'bob', amount: 30 }),
    );
    expect(killedAt, 'the leader was killed mid-transfer').to.not.equal(null);
    expect(creditsPending).to.equal(1);
    expect(reply).to.deep.equal({ ok: true, state: 'OPEN', balance: OPENING - 30 });
    await cluster.runUntilIdle();
    const next = cluster.leader();
    expect(next).to.not.equal(null).and.not.equal(leader);
    cluster.restart(leader);
    await cluster.runUntilIdle();
    for (const member of cluster.memberIds) {
      expect(balance(cluster, member, 'alice'), `alice on member ${member}`).to.equal(OPENING - 30);
      expect(balance(cluster, member, 'bob'), `bob on member ${member}`).to.equal(OPENING + 30);
    }
    const report = cluster.verify();
    expect(report.elections).to.be.at.least(2);
  });

  it('random transfers and freezes under random faults conserve the total (3 seeds)', async () => {
    const options: Omit<TestClusterOptions, 'seed'> = {
      services: bank,
      invariants: { 'total balance conserved': conserved(OPENING * ACCOUNTS.length) },
    };
    const reports = await sweepSeeds({ ...options, seeds: 3 }, (cluster) => randomTraffic(cluster, 60));
    expect(reports.map((r) => r.ok)).to.deep.equal([true, true, true]);
    expect(
      reports.reduce((n, r) => n + r.faultsInjected, 0),
      'faults struck',
    ).to.be.greaterThan(0);
    expect(reports.reduce((n, r) => n + r.acknowledged, 0)).to.be.greaterThan(3 * ACCOUNTS.length);
  });

  it('a planted transfer applied twice is reported with its seed, and that seed replays the same failure', async () => {
    const { dir, module } = plantDoubleCredit();
    try {
      const buggy = (await import(module)) as typeof bank;
      const options: Omit<TestClusterOptions, 'seed'> = {
        services: buggy,
        invariants: { 'total balance conserved': conserved(OPENING * ACCOUNTS.length) },
      };
      let failure: TestClusterFailure | null = null;
      try {
        await sweepSeeds({ ...options, seeds: 3, firstSeed: 20 }, (cluster) => randomTraffic(cluster, 30));
      } catch (error) {
        if (!(error instanceof TestClusterFailure)) throw error;
        failure = error;
      }
      expect(failure, 'the sweep failed').to.be.instanceOf(TestClusterFailure);
      const { seed, violations } = (failure as TestClusterFailure).report;
      expect((failure as TestClusterFailure).message)
        .to.include(`seed ${seed}`)
        .and.include('total balance conserved');
      const broken = violations.find((v) => v.invariant === 'total balance conserved');
      expect(broken?.detail).to.match(/holds \d+ in all/);
      // The seed alone replays it: the same run, the same verdict, to the detail.
      const again = new TestCluster({ ...options, seed });
      await randomTraffic(again, 30);
      expect(again.check().violations.map((v) => v.detail)).to.deep.equal(violations.map((v) => v.detail));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
