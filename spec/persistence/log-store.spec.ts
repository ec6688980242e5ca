import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';
import { type MemberStore, openMemberStore, StorageError } from '../../persistence/index.ts';
import { cleanup, entries, entry, plain, refuses, tempDir } from './helpers.ts';

describe('persistence: log store', () => {
  let dir: string;
  let store: MemberStore;

  beforeEach(async () => {
    dir = tempDir('log');
    store = await openMemberStore(dir);
  });

  afterEach(async () => {
    await store.close();
    cleanup(dir);
  });

  it('starts empty: first index 1, last index 0, term 0 at index 0', () => {
    expect(store.log.firstIndex).to.equal(1);
    expect(store.log.lastIndex).to.equal(0);
    expect(store.log.lastTerm).to.equal(0);
    expect(store.log.termAt(0)).to.equal(0);
    expect(store.log.entry(1)).to.equal(undefined);
    expect(store.log.read(1, 10)).to.deep.equal([]);
  });

  it('appends, reads a range, an entry and terms, and keeps them across a reopen', async () => {
    await store.log.append(entries(1, 5, 1));
    await store.log.append(entries(6, 9, 2));
    expect(store.log.lastIndex).to.equal(9);
    expect(store.log.lastTerm).to.equal(2);
    expect(store.log.termAt(5)).to.equal(1);
    expect(store.log.termAt(6)).to.equal(2);
    expect(store.log.read(3, 7).map(plain)).to.deep.equal(
      entries(3, 7, 1).map((e) => plain(e.index > 5 ? entry(e.index, 2) : e)),
    );
    expect(plain(store.log.entry(9))).to.deep.equal(plain(entry(9, 2)));
    await store.close();
    store = await openMemberStore(dir);
    expect(store.log.lastIndex).to.equal(9);
    expect(store.log.lastTerm).to.equal(2);
    expect(store.log.read(1).map(plain)).to.deep.equal([...entries(1, 5, 1), ...entries(6, 9, 2)].map(plain));
  });

  it('reads a range up to a byte budget, always at least one entry', async () => {
    await store.log.append(entries(1, 10, 1, 100));
    const pending = store.log.append(entries(11, 12, 1, 100)); // served from memory until flushed
    expect(store.log.read(1, 12, { maxBytes: 350 }).map((e) => e.index)).to.deep.equal([1, 2, 3]);
    expect(store.log.read(10, 12, { maxBytes: 250 }).map((e) => e.index)).to.deep.equal([10, 11]);
    expect(store.log.read(5, 12, { maxBytes: 10 }).map((e) => e.index)).to.deep.equal([5]);
    await pending;
    expect(store.status()).to.include({
      firstIndex: 1,
      lastIndex: 12,
      durableIndex: 12,
      latestSnapshotIndex: null,
    });
  });

  it('serves unflushed appends right away, and they stay put after the flush', async () => {
    const pending = store.log.append(entries(1, 3, 1));
    expect(store.log.lastIndex).to.equal(3);
    expect(plain(store.log.entry(2))).to.deep.equal(plain(entry(2, 1)));
    const next = store.log.append(entries(4, 4, 1));
    expect(store.log.durableIndex).to.equal(0); // nothing flushed yet: nothing to count towards a quorum
    await pending;
    expect(store.log.durableIndex).to.be.at.least(3);
    await next;
    expect(store.log.durableIndex).to.equal(4);
    expect(store.log.read(1).map(plain)).to.deep.equal(entries(1, 4, 1).map(plain));
  });

  it('group-commits every append of one event-loop turn in one LMDB transaction', async () => {
    const txnBefore = (store.env.getStats() as { lastTxnId: number }).lastTxnId;
    const appends = [];
    for (let i = 1; i <= 100; i++) appends.push(store.log.append([entry(i, 1)]));
    await Promise.all(appends);
    const txnAfter = (store.env.getStats() as { lastTxnId: number }).lastTxnId;
    expect(txnAfter - txnBefore).to.equal(1);
    expect(store.log.lastIndex).to.equal(100);
  });

  it('handles indices beyond 2^32', async () => {
    const base = 2 ** 32 + 5;
    await store.log.purgeTo(base - 1, 3);
    await store.log.append([entry(base, 3), entry(base + 1, 4)]);
    expect(store.log.firstIndex).to.equal(base);
    expect(store.log.termAt(base - 1)).to.equal(3);
    await store.close();
    store = await openMemberStore(dir);
    expect(store.log.read(base).map((e) => [e.index, e.term])).to.deep.equal([
      [base, 3],
      [base + 1, 4],
    ]);
  });

  it('truncates a conflicting suffix and appends the leader entries in its place', async () => {
    await store.log.append(entries(1, 10, 1));
    await store.log.truncateFrom(6);
    expect(store.log.lastIndex).to.equal(5);
    expect(store.log.lastTerm).to.equal(1);
    expect(store.log.entry(6)).to.equal(undefined);
    await store.log.append(entries(6, 7, 2));
    await store.close();
    store = await openMemberStore(dir);
    expect(store.log.read(1).map((e) => e.term)).to.deep.equal([1, 1, 1, 1, 1, 2, 2]);
  });

  it('purges a prefix and still answers the term at the purge point', async () => {
    await store.log.append([...entries(1, 4, 1), ...entries(5, 8, 2)]);
    await store.log.purgeTo(5);
    expect(store.log.firstIndex).to.equal(6);
    expect(store.log.termAt(5)).to.equal(2);
    expect(store.log.termAt(4)).to.equal(undefined);
    expect(store.log.entry(5)).to.equal(undefined);
    expect(() => store.log.read(3, 7))
      .to.throw(StorageError)
      .with.property('code', 'COMPACTED');
    await refuses(() => store.log.truncateFrom(5), 'INVALID_ARGUMENT', /above the purge boundary 5/);
    await store.close();
    store = await openMemberStore(dir);
    expect(store.log.firstIndex).to.equal(6);
    expect(store.log.termAt(5)).to.equal(2);
    expect(store.log.read(6).map((e) => e.index)).to.deep.equal([6, 7, 8]);
  });

  it('purges beyond the last entry when a snapshot is installed from the leader', async () => {
    await store.log.append(entries(1, 3, 1));
    await refuses(() => store.log.purgeTo(10), 'INVALID_ARGUMENT', /pass the snapshot's term/);
    await store.log.purgeTo(10, 4);
    expect([store.log.firstIndex, store.log.lastIndex, store.log.lastTerm]).to.deep.equal([11, 10, 4]);
    await store.log.append([entry(11, 4)]);
    expect(store.log.read(11).length).to.equal(1);
  });

  it('installs a leader snapshot the Raft way: a matching log keeps its suffix, a conflicting one is discarded', async () => {
    await store.log.append([...entries(1, 5, 1), ...entries(6, 8, 2)]);
    await store.log.purgeTo(4, 1); // matches: entries 5..8 stay
    expect([store.log.firstIndex, store.log.lastIndex, store.log.lastTerm]).to.deep.equal([5, 8, 2]);
    await store.log.purgeTo(6, 3); // the log has term 2 at 6: everything goes
    expect([store.log.firstIndex, store.log.lastIndex, store.log.lastTerm]).to.deep.equal([7, 6, 3]);
    expect(store.log.read(7)).to.deep.equal([]);
    await store.close();
    store = await openMemberStore(dir);
    expect([store.log.firstIndex, store.log.lastIndex, store.log.termAt(6)]).to.deep.equal([7, 6, 3]);
  });

  it('takes the purge term from the snapshot set recorded at that index', async () => {
    await store.log.append(entries(1, 3, 1));
    const cm = await store.snapshots.save(
      { serviceId: -1, logIndex: 20, term: 5, timestamp: 0 },
      Buffer.from('cm'),
    );
    await store.recordingLog.appendSnapshotSet({
      term: 5,
      logIndex: 20,
      timestamp: 0,
      snapshots: [{ serviceId: -1, snapshotId: cm.snapshotId }],
    });
    await store.log.purgeTo(20); // beyond the log: the recorded snapshot says term 5
    expect([store.log.firstIndex, store.log.lastIndex, store.log.lastTerm]).to.deep.equal([21, 20, 5]);
    expect(store.recoveryPlan().replayFrom).to.equal(21);
  });

  it('refuses bad appends with a rejected promise that says what was wrong and how to fix it, never a throw', async () => {
    await store.log.append(entries(1, 2, 2));
    const bad = (entries: LogEntry[], pattern: RegExp) =>
      refuses(() => store.log.append(entries), 'INVALID_ARGUMENT', pattern);
    // The follower's crash of issue 10: entries after a snapshot not yet installed.
    await bad([entry(16008, 2)], /entries\[0\] has index 16008 but the log expects 3/);
    await bad([entry(3, 1)], /terms never decrease/);
    await bad([{ ...entry(3, 2), kind: 99 as EntryKind }], /use a value of EntryKind/);
    await bad([{ ...entry(3, 2), payload: 'x' as unknown as Uint8Array }], /not a Uint8Array/);
    await bad([{ ...entry(3, 2), timestamp: Number.NaN }], /timestamp/);
    await bad([{ ...entry(3, 2), term: 2.5 }], /term 2.5; a term is an integer from 1 to/);
    await bad([{ ...entry(3, 2), term: Number.MAX_SAFE_INTEGER }], /a term is an integer from 1 to/);
    await bad([null as unknown as LogEntry], /is not a LogEntry object/);
    await refuses(
      () => store.log.append('x' as unknown as LogEntry[]),
      'INVALID_ARGUMENT',
      /takes an array of LogEntry objects/,
    );
    expect(store.log.lastIndex).to.equal(2);
    await store.log.append([{ ...entry(3, 2), kind: EntryKind.NEW_LEADERSHIP_TERM }]);
    expect(store.log.entry(3)?.kind).to.equal(EntryKind.NEW_LEADERSHIP_TERM);
  });

  it('refuses a bad truncate or purge with a rejected promise and leaves the log as it was', async () => {
    await store.log.append(entries(1, 6, 2));
    await store.log.purgeTo(2);
    await refuses(() => store.log.truncateFrom(1.5), 'INVALID_ARGUMENT', /truncateFrom\(1.5\)/);
    await refuses(() => store.log.truncateFrom(-1), 'INVALID_ARGUMENT', /above the purge boundary 2/);
    await refuses(() => store.log.purgeTo(Number.NaN), 'INVALID_ARGUMENT', /purgeTo\(NaN\)/);
    await refuses(() => store.log.purgeTo(4, 0), 'INVALID_ARGUMENT', /a term is an integer from 1 to/);
    await refuses(() => store.log.purgeTo(4, 1), 'INVALID_ARGUMENT', /below the purge boundary's term 2/);
    expect([store.log.firstIndex, store.log.lastIndex, store.log.lastTerm]).to.deep.equal([3, 6, 2]);
    expect(store.log.read(3).map((e) => e.index)).to.deep.equal([3, 4, 5, 6]);
  });

  it('opens a member directory whose name contains a dot as a directory', async () => {
    const dotted = `${dir}/member.1`;
    const other = await openMemberStore(dotted);
    try {
      await other.log.append(entries(1, 2, 1));
    } finally {
      await other.close();
    }
    const reopened = await openMemberStore(dotted);
    expect(reopened.log.lastIndex).to.equal(2);
    await reopened.close();
  });

  it('O3: locks the member directory against a second opener, and takes over a lock left by a dead process', async () => {
    const error = await openMemberStore(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(StorageError).with.property('code', 'LOCKED');
    await store.close();
    writeFileSync(join(dir, 'chorus.pid'), `${process.ppid}\n`); // a live process holds it
    const held = await openMemberStore(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(held)
      .to.be.instanceOf(StorageError)
      .with.property('message')
      .that.contains(`process ${process.ppid}`);
    writeFileSync(join(dir, 'chorus.pid'), '2147483646\n'); // no such process: a SIGKILLed member's lock
    store = await openMemberStore(dir);
    expect(store.log.lastIndex).to.equal(0);
  });

  it('O1: refuses bad options with a message naming the option and its range', async () => {
    const attempt = (options: Parameters<typeof openMemberStore>[1]) =>
      openMemberStore(`${dir}/other`, options).then(
        () => undefined,
        (e: unknown) => (e as Error).message,
      );
    expect(await attempt({ mapSizeBytes: 100 })).to.match(/mapSizeBytes 100 must be an integer >= 65536/);
    expect(await attempt({ snapshotChunkBytes: 0 })).to.match(/snapshotChunkBytes 0 must be an integer/);
    expect(await attempt({ startupScan: 'maybe' as 'off' })).to.match(/startupScan 'maybe'/);
  });

  it('refuses operations after close: writers with a rejected promise, readers by throwing', async () => {
    await store.close();
    await refuses(() => store.log.append([entry(1, 1)]), 'CLOSED', /append: the log store is closed/);
    await refuses(() => store.log.truncateFrom(1), 'CLOSED', /truncateFrom: the log store is closed/);
    await refuses(() => store.log.purgeTo(1, 1), 'CLOSED', /purgeTo: the log store is closed/);
    expect(() => store.log.read(1))
      .to.throw(StorageError)
      .with.property('code', 'CLOSED');
  });
});
