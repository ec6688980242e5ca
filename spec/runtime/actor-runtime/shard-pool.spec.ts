import { expect } from 'chai';
import { pack } from '../../../actors/actor-runtime/protocol.ts';
import { ShardSet } from '../../../actors/actor-runtime/shard-set.ts';
import { EntryKind } from '../../../actors/log/log-entry.ts';
import { Random } from '../../../machines/random.ts';
import { decodeBatch, encodeBatch } from '../../../runtime/actor-runtime/batch-codec.ts';
import { ShardBusyError, ShardPool } from '../../../runtime/actor-runtime/shard-pool.ts';
import { LogBuilder, services } from '../../actors/actor-runtime/fixtures.ts';

const SERVICES_MODULE = new URL('../../actors/actor-runtime/fixtures.ts', import.meta.url);

const workload = (count: number, seed: number): LogBuilder => {
  const log = new LogBuilder();
  const rng = new Random(seed);
  for (let i = 0; i < count; i++) {
    const id = `a${rng.int(0, 50)}`;
    const roll = rng.int(0, 9);
    if (roll === 0) log.command({ type: 'ARM', id });
    else if (roll === 1) log.command({ type: 'NOTIFY', id, to: `a${rng.int(0, 50)}` });
    else if (roll === 2) log.command({ type: 'FAIL', id });
    else if (roll === 3) log.command({ type: 'CALL_OUT', id });
    else log.command({ type: 'INC', id, by: rng.int(1, 100) });
    if (i % 97 === 0) log.action('SNAPSHOT');
  }
  return log;
};

/** Outputs without SNAPSHOT blobs (those differ by shard count by design) as comparable bytes. */
const comparable = (outputs: readonly { type: string }[]) =>
  pack(outputs.filter((o) => o.type !== 'SNAPSHOT'));

describe('batch codec', () => {
  it('round-trips entries through one transferable buffer', () => {
    const log = workload(20, 3);
    const decoded = decodeBatch(encodeBatch(log.entries));
    expect(decoded.map((e) => ({ ...e, payload: Buffer.from(e.payload) }))).to.deep.equal(
      log.entries.map((e) => ({ ...e, payload: Buffer.from(e.payload) })),
    );
  });
});

describe('ShardPool (piscina worker shards)', function () {
  this.timeout(20_000);
  const pools: ShardPool[] = [];
  let one: ShardPool;
  let two: ShardPool;

  before(async () => {
    [one, two] = await Promise.all([
      ShardPool.start({ shards: 1, servicesModule: SERVICES_MODULE }),
      ShardPool.start({ shards: 2, servicesModule: SERVICES_MODULE, maxLiveActors: 8 }),
    ]);
    pools.push(one, two);
  });

  after(async () => {
    await Promise.all(pools.map((pool) => pool.close()));
  });

  it('1 and 2 worker shards give the same outputs and states as the in-process shard', async () => {
    const log = workload(600, 11);
    const reference = new ShardSet(1, { services });
    const expected = reference.apply(log.entries);
    // Overlapping batches of uneven size: they must be applied and resolved in order.
    const batches: Promise<unknown[]>[][] = [[], []];
    for (let at = 0, size = 1; at < log.entries.length; at += size, size = (size * 7) % 61 || 1) {
      const batch = log.entries.slice(at, at + size);
      batches[0].push(one.apply(batch));
      batches[1].push(two.apply(batch));
    }
    for (const results of batches) {
      const outputs = (await Promise.all(results)).flat() as { type: string }[];
      expect(comparable(outputs)).to.deep.equal(comparable(expected));
    }
    for (const pool of [one, two]) {
      const snapshot = await pool.snapshot();
      expect(snapshot.index).to.equal(log.index);
      const canonical = ShardSet.restore(snapshot, 1, { services }).snapshot().shards[0];
      expect(canonical).to.deep.equal(reference.snapshot().shards[0]);
    }
    expect(await two.actorState('demo/counter/a7')).to.deep.equal(reference.actorState('demo/counter/a7'));
  });

  it('resolves batches in call order, including a batch no shard applies', async () => {
    const log = new LogBuilder(100_000);
    log.command({ type: 'SPIN', id: 'x', rounds: 20_000_000 });
    log.raw(EntryKind.NEW_LEADERSHIP_TERM, pack([2]));
    const order: string[] = [];
    await Promise.all([
      two.apply([log.entries[0]]).then(() => order.push('slow')),
      two.apply([log.entries[1]]).then(() => order.push('term')),
    ]);
    expect(order).to.deep.equal(['slow', 'term']);
  });

  it('R4: the main event loop (consensus heartbeats) keeps ticking while a shard does slow work', async () => {
    const log = new LogBuilder(1_000_000);
    log.command({ type: 'SPIN', id: 'slow', rounds: 300_000_000 });
    /** Run `work` with a 5 ms heartbeat interval; the longest gap between beats and the time it took. */
    const watch = async (work: () => unknown): Promise<{ maxGap: number; busyMs: number }> => {
      let maxGap = 0;
      let last = performance.now();
      const heartbeat = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
      }, 5);
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 10)); // let the heartbeat start beating
      await work();
      const busyMs = performance.now() - started;
      clearInterval(heartbeat);
      maxGap = Math.max(maxGap, performance.now() - last);
      return { maxGap, busyMs };
    };
    // The same work on the main thread (an in-process shard) stalls the heartbeat for all of it: the
    // measurement can tell.
    const inline = await watch(() => new ShardSet(1, { services }).apply(log.entries));
    expect(inline.maxGap).to.be.greaterThan(inline.busyMs * 0.6);
    // On a worker shard the heartbeat keeps its rhythm for the whole time the shard is busy.
    let reply: unknown;
    const pooled = await watch(async () => {
      [reply] = await one.apply(log.entries);
    });
    expect(reply).to.deep.include({ type: 'REPLY', ok: true });
    expect(pooled.busyMs).to.be.greaterThan(100);
    expect(pooled.maxGap).to.be.lessThan(pooled.busyMs / 3);
  });

  it('R1: a full mailbox answers BUSY instead of growing, and accepts again once drained', async () => {
    const pool = await ShardPool.start({ shards: 1, servicesModule: SERVICES_MODULE, maxPendingEntries: 10 });
    pools.push(pool);
    const log = new LogBuilder();
    for (let i = 0; i < 30; i++) log.command({ type: 'INC', id: `b${i}`, by: 1 });
    const first = pool.apply(log.entries.slice(0, 8));
    expect(pool.busy).to.equal(false);
    let refused: unknown;
    await pool.apply(log.entries.slice(8, 16)).catch((error) => {
      refused = error;
    });
    expect(refused).to.be.instanceOf(ShardBusyError);
    expect((refused as ShardBusyError).code).to.equal('BUSY');
    expect(pool.pendingEntries).to.equal(8);
    await first;
    expect(pool.pendingEntries).to.equal(0);
    const rest = await pool.apply(log.entries.slice(8, 16));
    expect(rest).to.have.length(8);
  });

  it('refuses to start when the services module cannot be loaded, naming it', async () => {
    let failure: unknown;
    await ShardPool.start({
      shards: 1,
      servicesModule: new URL('./no-such-services.ts', import.meta.url),
    }).catch((error) => {
      failure = error;
    });
    expect(String(failure)).to.match(/no-such-services/);
  });

  it('restores worker shards from a snapshot set with a different shard count', async () => {
    const log = workload(200, 5);
    const reference = new ShardSet(3, { services });
    reference.apply(log.entries);
    const pool = await ShardPool.start({
      shards: 2,
      servicesModule: SERVICES_MODULE,
      snapshot: reference.snapshot(),
    });
    pools.push(pool);
    const more = new LogBuilder(log.index, log.time);
    more.command({ type: 'INC', id: 'a3', by: 1000 });
    reference.apply(more.entries);
    await pool.apply(more.entries);
    expect(await pool.actorState('demo/counter/a3')).to.deep.equal(reference.actorState('demo/counter/a3'));
  });
});
