// Model-based property test: random sequences of append, truncate, purge, snapshot, invalidate and
// reopen run against the real member store and against a plain in-memory model; after every command
// the log, its bounds and terms, and the recovery plan (with the snapshot data it points at) must agree.

import { expect } from 'chai';
import fc from 'fast-check';
import type { LogEntry } from '../../actors/log/log-entry.ts';
import {
  CONSENSUS_MODULE_SERVICE_ID,
  type MemberStore,
  openMemberStore,
  StorageError,
} from '../../persistence/index.ts';
import { checkProperty } from '../support/property.ts';
import { cleanup, entry, plain, tempDir } from './helpers.ts';

interface ModelSet {
  logIndex: number;
  term: number;
  valid: boolean;
  /** serviceId -> expected snapshot bytes */
  data: Map<number, number[]>;
}

interface Model {
  log: Map<number, LogEntry>;
  boundary: { index: number; term: number };
  lastIndex: number;
  lastTerm: number;
  sets: ModelSet[];
  snapshotCounter: number;
}

interface Real {
  dir: string;
  store: MemberStore;
}

type Command = fc.AsyncCommand<Model, Real, boolean>;

const highestSnapshotIndex = (m: Model): number => Math.max(0, ...m.sets.map((set) => set.logIndex));
const latestValid = (m: Model): ModelSet | undefined => [...m.sets].reverse().find((set) => set.valid);

/** Compare everything observable after each command. */
const checkAgreement = (m: Model, r: Real): void => {
  const log = r.store.log;
  expect(log.firstIndex, 'firstIndex').to.equal(m.boundary.index + 1);
  expect(log.lastIndex, 'lastIndex').to.equal(m.lastIndex);
  expect(log.lastTerm, 'lastTerm').to.equal(m.lastTerm);
  expect(log.durableIndex, 'durableIndex once every command has resolved').to.equal(m.lastIndex);
  expect(log.termAt(m.boundary.index), 'term at the purge boundary').to.equal(m.boundary.term);
  const expected: ReturnType<typeof plain>[] = [];
  for (let i = m.boundary.index + 1; i <= m.lastIndex; i++) expected.push(plain(m.log.get(i)));
  expect(log.read(log.firstIndex).map(plain), 'log contents').to.deep.equal(expected);
  if (m.lastIndex > m.boundary.index) expect(log.termAt(m.lastIndex)).to.equal(m.log.get(m.lastIndex)?.term);

  const usable = [...m.sets].reverse().find((set) => set.valid && set.logIndex >= m.boundary.index);
  if (usable === undefined && m.boundary.index > 0) {
    expect(() => r.store.recoveryPlan())
      .to.throw(StorageError)
      .with.property('code', 'COMPACTED');
    return;
  }
  const plan = r.store.recoveryPlan();
  expect(plan.snapshotSet?.logIndex, 'recovery snapshot index').to.equal(usable?.logIndex);
  expect(plan.replayFrom).to.equal((usable?.logIndex ?? 0) + 1);
  expect(plan.replayTo).to.equal(m.lastIndex);
  if (usable !== undefined) {
    const loaded = new Map(
      plan.snapshots.map(({ entry: e }) => [e.serviceId, Array.from(r.store.snapshots.load(e.snapshotId))]),
    );
    expect(loaded).to.deep.equal(usable.data);
  }
};

class AppendCommand implements Command {
  constructor(
    readonly count: number,
    readonly newTerm: boolean,
    readonly size: number,
    readonly split: boolean,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const term = this.newTerm || m.lastTerm === 0 ? m.lastTerm + 1 : m.lastTerm;
    const batch: LogEntry[] = [];
    for (let i = 1; i <= this.count; i++) batch.push(entry(m.lastIndex + i, term, this.size));
    // Either one append, or one append per entry in the same turn (one group commit).
    if (this.split) await Promise.all(batch.map((e) => r.store.log.append([e])));
    else await r.store.log.append(batch);
    for (const e of batch) m.log.set(e.index, e);
    m.lastIndex += this.count;
    m.lastTerm = term;
    checkAgreement(m, r);
  }
  toString = () => `append(${this.count}${this.newTerm ? ', new term' : ''}${this.split ? ', split' : ''})`;
}

class TruncateCommand implements Command {
  constructor(readonly back: number) {}
  // Raft truncates only uncommitted entries; snapshots are of committed ones.
  check = (m: Model) => m.lastIndex > Math.max(m.boundary.index, highestSnapshotIndex(m));
  async run(m: Model, r: Real): Promise<void> {
    const floor = Math.max(m.boundary.index, highestSnapshotIndex(m)) + 1;
    const from = Math.max(floor, m.lastIndex - this.back);
    await r.store.log.truncateFrom(from);
    for (let i = from; i <= m.lastIndex; i++) m.log.delete(i);
    m.lastIndex = from - 1;
    m.lastTerm = from - 1 === m.boundary.index ? m.boundary.term : m.log.get(from - 1)!.term;
    checkAgreement(m, r);
  }
  toString = () => `truncate(back ${this.back})`;
}

/** Append, truncate part of what was just appended, append again: all queued in one turn, unflushed. */
class PipelinedCommand implements Command {
  constructor(
    readonly first: number,
    readonly cut: number,
    readonly second: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const term = m.lastTerm + 1;
    const firstBatch: LogEntry[] = [];
    for (let i = 1; i <= this.first; i++) firstBatch.push(entry(m.lastIndex + i, term, 16));
    const from = m.lastIndex + 1 + Math.max(0, this.first - this.cut);
    const secondBatch: LogEntry[] = [];
    for (let i = 0; i < this.second; i++) secondBatch.push(entry(from + i, term + 1, 24));
    const pending = [
      r.store.log.append(firstBatch),
      r.store.log.truncateFrom(from),
      r.store.log.append(secondBatch),
    ];
    // Reads see the queued state before anything is flushed.
    expect(r.store.log.lastIndex).to.equal(from - 1 + this.second);
    await Promise.all(pending);
    for (const e of [...firstBatch, ...secondBatch]) m.log.set(e.index, e);
    for (let i = from + this.second; i <= m.lastIndex + this.first; i++) m.log.delete(i);
    m.lastIndex = from - 1 + this.second;
    m.lastTerm = m.lastIndex === m.boundary.index ? m.boundary.term : m.log.get(m.lastIndex)!.term;
    checkAgreement(m, r);
  }
  toString = () => `pipelined(append ${this.first}, cut ${this.cut}, append ${this.second})`;
}

class PurgeCommand implements Command {
  constructor(readonly backFromSnapshot: number) {}
  check = (m: Model) => latestValid(m) !== undefined && latestValid(m)!.logIndex > m.boundary.index;
  async run(m: Model, r: Real): Promise<void> {
    const to = Math.max(m.boundary.index + 1, latestValid(m)!.logIndex - this.backFromSnapshot);
    await r.store.log.purgeTo(to);
    m.boundary = { index: to, term: m.log.get(to)!.term };
    for (const index of [...m.log.keys()]) if (index <= to) m.log.delete(index);
    checkAgreement(m, r);
  }
  toString = () => `purge(snapshot - ${this.backFromSnapshot})`;
}

class SnapshotCommand implements Command {
  constructor(
    readonly services: number,
    readonly size: number,
  ) {}
  check = (m: Model) => m.lastIndex > m.boundary.index && m.lastIndex > highestSnapshotIndex(m);
  async run(m: Model, r: Real): Promise<void> {
    const logIndex = m.lastIndex;
    const term = m.lastTerm;
    const data = new Map<number, number[]>();
    const recorded: { serviceId: number; snapshotId: number }[] = [];
    for (let serviceId = CONSENSUS_MODULE_SERVICE_ID; serviceId < this.services; serviceId++) {
      const bytes = Array.from(
        { length: this.size + serviceId + 1 },
        (_, i) => (m.snapshotCounter * 13 + i) & 0xff,
      );
      m.snapshotCounter++;
      const info = await r.store.snapshots.save(
        { serviceId, logIndex, term, timestamp: logIndex },
        Uint8Array.from(bytes),
      );
      data.set(serviceId, bytes);
      recorded.push({ serviceId, snapshotId: info.snapshotId });
    }
    await r.store.recordingLog.appendSnapshotSet({
      term,
      logIndex,
      timestamp: logIndex,
      snapshots: recorded,
    });
    m.sets.push({ logIndex, term, valid: true, data });
    checkAgreement(m, r);
  }
  toString = () => `snapshot(${this.services} services, ${this.size} bytes)`;
}

/** A follower installs a leader's snapshot of a newer term, at or beyond its log end: its log is discarded. */
class InstallSnapshotCommand implements Command {
  constructor(
    readonly offset: number,
    readonly size: number,
  ) {}
  check = (m: Model) => m.lastIndex + this.offset - 3 > Math.max(m.boundary.index, highestSnapshotIndex(m));
  async run(m: Model, r: Real): Promise<void> {
    const logIndex = m.lastIndex + this.offset - 3; // up to 3 inside the log (conflicting) or beyond it
    const term = m.lastTerm + 1;
    const bytes = Array.from({ length: this.size }, (_, i) => (m.snapshotCounter * 29 + i) & 0xff);
    m.snapshotCounter++;
    const info = await r.store.snapshots.save(
      { serviceId: CONSENSUS_MODULE_SERVICE_ID, logIndex, term, timestamp: 0 },
      Uint8Array.from(bytes),
    );
    await r.store.recordingLog.appendSnapshotSet({
      term,
      logIndex,
      timestamp: 0,
      snapshots: [{ serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: info.snapshotId }],
    });
    await r.store.log.purgeTo(logIndex); // the term comes from the recorded set
    m.sets.push({ logIndex, term, valid: true, data: new Map([[CONSENSUS_MODULE_SERVICE_ID, bytes]]) });
    m.log.clear();
    m.boundary = { index: logIndex, term };
    m.lastIndex = logIndex;
    m.lastTerm = term;
    checkAgreement(m, r);
  }
  toString = () => `installSnapshot(log end ${this.offset - 3 >= 0 ? '+' : ''}${this.offset - 3})`;
}

class InvalidateCommand implements Command {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const invalidated = await r.store.recordingLog.invalidateLatestSnapshot();
    const latest = latestValid(m);
    expect(invalidated?.logIndex).to.equal(latest?.logIndex);
    if (latest !== undefined) latest.valid = false;
    checkAgreement(m, r);
  }
  toString = () => 'invalidateLatestSnapshot';
}

class ReopenCommand implements Command {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await r.store.close();
    r.store = await openMemberStore(r.dir); // the start-up scan must find nothing
    checkAgreement(m, r);
  }
  toString = () => 'reopen';
}

const commands = [
  fc
    .tuple(fc.integer({ min: 1, max: 12 }), fc.boolean(), fc.integer({ min: 0, max: 300 }), fc.boolean())
    .map(([count, newTerm, size, split]) => new AppendCommand(count, newTerm, size, split)),
  fc.integer({ min: 0, max: 8 }).map((back) => new TruncateCommand(back)),
  fc
    .tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 }))
    .map(([first, cut, second]) => new PipelinedCommand(first, cut, second)),
  fc.integer({ min: 0, max: 3 }).map((back) => new PurgeCommand(back)),
  fc
    .tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3000 }))
    .map(([services, size]) => new SnapshotCommand(services, size)),
  fc
    .tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 700 }))
    .map(([offset, size]) => new InstallSnapshotCommand(offset, size)),
  fc.constant(new InvalidateCommand()),
  fc.constant(new ReopenCommand()),
];

describe('persistence: model-based property test (append, truncate, purge, snapshot, install, invalidate, reopen)', () => {
  it('the member store agrees with an in-memory model after every command', async () => {
    await checkProperty(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), async (cmds) => {
        const dir = tempDir('model');
        // Small chunks so snapshots span several chunks.
        const real: Real = { dir, store: await openMemberStore(dir, { snapshotChunkBytes: 512 }) };
        try {
          const model: Model = {
            log: new Map(),
            boundary: { index: 0, term: 0 },
            lastIndex: 0,
            lastTerm: 0,
            sets: [],
            snapshotCounter: 0,
          };
          await fc.asyncModelRun(() => ({ model, real }), cmds);
        } finally {
          await real.store.close();
          cleanup(dir);
        }
      }),
      { numRuns: 60 },
    );
  });
});
