import { expect } from 'chai';
import { CONSENSUS_MODULE_SERVICE_ID, type MemberStore, openMemberStore } from '../../persistence/index.ts';
import { cleanup, entries, refuses, tempDir } from './helpers.ts';

describe('persistence: recording log and recovery plan', () => {
  let dir: string;
  let store: MemberStore;

  beforeEach(async () => {
    dir = tempDir('rec');
    store = await openMemberStore(dir);
  });
  afterEach(async () => {
    await store.close();
    cleanup(dir);
  });

  const snapshotSet = async (logIndex: number, term: number, services: number[]) => {
    const recorded = [];
    for (const serviceId of [CONSENSUS_MODULE_SERVICE_ID, ...services]) {
      const info = await store.snapshots.save(
        { serviceId, logIndex, term, timestamp: logIndex },
        Buffer.from(`s${serviceId}@${logIndex}`),
      );
      recorded.push({ serviceId, snapshotId: info.snapshotId });
    }
    return store.recordingLog.appendSnapshotSet({ term, logIndex, timestamp: logIndex, snapshots: recorded });
  };

  it('records terms with base and end positions, closing the previous term when a new one starts', async () => {
    await store.recordingLog.appendTerm(1, 0, 100);
    await store.recordingLog.appendTerm(2, 7, 200);
    await store.recordingLog.closeTerm(2, 12);
    await refuses(
      () => store.recordingLog.appendTerm(2, 12, 300),
      'INVALID_ARGUMENT',
      /a new term must be higher/,
    );
    await refuses(
      () => store.recordingLog.appendTerm(Number.MAX_SAFE_INTEGER, 12, 300),
      'INVALID_ARGUMENT',
      /appendTerm\(9007199254740991, 12, 300\)/,
    );
    await refuses(() => store.recordingLog.closeTerm(7, 12), 'INVALID_ARGUMENT', /has no term 7/);
    await store.close();
    store = await openMemberStore(dir);
    expect(store.recordingLog.terms().map((t) => [t.term, t.baseIndex, t.endIndex, t.valid])).to.deep.equal([
      [1, 0, 7, true],
      [2, 7, 12, true],
    ]);
    expect(store.recordingLog.lastTerm()?.term).to.equal(2);
  });

  it('records a snapshot set (one per service plus the consensus module) and plans recovery from it', async () => {
    await store.log.append(entries(1, 20, 1));
    await store.recordingLog.appendTerm(1, 0, 0);
    const set = await snapshotSet(12, 1, [0, 1]);
    expect(set.snapshots.map((s) => s.serviceId)).to.deep.equal([-1, 0, 1]);
    const plan = store.recoveryPlan();
    expect(plan.snapshotSet?.logIndex).to.equal(12);
    expect([plan.replayFrom, plan.replayTo]).to.deep.equal([13, 20]);
    expect(
      plan.snapshots.map(({ entry }) => store.snapshots.load(entry.snapshotId).toString()),
    ).to.deep.equal(['s-1@12', 's0@12', 's1@12']);
    expect(plan.lastTerm?.term).to.equal(1);
    await refuses(
      () =>
        store.recordingLog.appendSnapshotSet({
          term: 1,
          logIndex: 14,
          timestamp: 0,
          snapshots: [{ serviceId: 0, snapshotId: 1 }],
        }),
      'INVALID_ARGUMENT',
      /no consensus module snapshot/,
    );
  });

  it('invalidating the latest snapshot set makes recovery use the one before it, durably', async () => {
    await store.log.append(entries(1, 30, 1));
    await snapshotSet(10, 1, [0]);
    await snapshotSet(20, 1, [0]);
    expect(store.recoveryPlan().snapshotSet?.logIndex).to.equal(20);
    const invalidated = await store.recordingLog.invalidateLatestSnapshot();
    expect(invalidated?.logIndex).to.equal(20);
    await store.close();
    store = await openMemberStore(dir);
    const plan = store.recoveryPlan();
    expect(plan.snapshotSet?.logIndex).to.equal(10);
    expect(plan.replayFrom).to.equal(11);
    await store.recordingLog.invalidateLatestSnapshot();
    expect(store.recoveryPlan().snapshotSet).to.equal(undefined);
    expect(await store.recordingLog.invalidateLatestSnapshot()).to.equal(undefined);
    const removed = await store.recordingLog.removeOldSnapshotEntries(1);
    expect(removed.length).to.equal(4);
  });

  it('refuses a recovery plan when the log was purged and no usable snapshot covers it', async () => {
    await store.log.append(entries(1, 10, 1));
    await snapshotSet(5, 1, []);
    await store.log.purgeTo(5);
    expect(store.recoveryPlan().replayFrom).to.equal(6);
    await store.recordingLog.invalidateLatestSnapshot();
    expect(() => store.recoveryPlan()).to.throw(/no usable snapshot covers the log purged up to 5/);
  });

  it('prunes old and invalid snapshot sets and the snapshot data only they referred to', async () => {
    await store.log.append(entries(1, 40, 1));
    await snapshotSet(10, 1, [0]);
    await snapshotSet(20, 1, [0]);
    await snapshotSet(30, 1, [0]);
    await store.recordingLog.invalidateLatestSnapshot(); // the set at 30 is bad
    const abandoned = await store.snapshots.save(
      { serviceId: 0, logIndex: 15, term: 1, timestamp: 0 },
      Buffer.from('x'),
    );
    const inProgress = await store.snapshots.save(
      { serviceId: 0, logIndex: 35, term: 1, timestamp: 0 },
      Buffer.from('y'),
    );
    const deleted = await store.pruneSnapshots(1);
    expect(store.recordingLog.snapshotSets().map((set) => set.logIndex)).to.deep.equal([20]);
    expect(deleted).to.include(abandoned.snapshotId);
    expect(deleted.length).to.equal(5); // sets at 10 and 30 (two each) and the abandoned one
    expect(store.snapshots.list().map((info) => info.logIndex)).to.deep.equal([20, 20, 35]);
    expect(store.snapshots.list().map((info) => info.snapshotId)).to.include(inProgress.snapshotId);
    expect(store.recoveryPlan().snapshotSet?.logIndex).to.equal(20);
    expect(store.scan().ok).to.equal(true);
  });
});
