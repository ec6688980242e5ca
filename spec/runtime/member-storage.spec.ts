// Issue 10, section 3, on a real Member: storage effects take effect in the order the consensus module
// emitted them. A follower whose service is busy (its apply steps are held) receives the leader's
// snapshot and then the entries after it. The snapshot install used to wait behind the service work
// while the entries after it went straight to the log, which refused them ("entries[0] has index S+1 but
// the log expects 11") with a synchronous throw: an uncaught exception, past the member's failure path.
//
// The leader here is played by the test through `Member.request`, with what a real single-member
// cluster wrote: its snapshot (sessions and KV state) and its log after it, read back from its store.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { pack } from 'msgpackr';
import pino from 'pino';
import type { PeerMessage } from '../../actors/consensus/index.ts';
import { EntryKind, type LogEntry } from '../../actors/log/log-entry.ts';
import { CONSENSUS_MODULE_SERVICE_ID, openMemberStore } from '../../persistence/index.ts';
import { ChorusClient } from '../../runtime/client/client.ts';
import { validateClusterConfig } from '../../runtime/config.ts';
import { newSecret } from '../../runtime/local-cluster.ts';
import { Member, SERVICE_SNAPSHOT_ID } from '../../runtime/member.ts';
import { StorageSequence } from '../../runtime/member-storage.ts';
import { type ApplyOptions, KvServiceHost, type ServiceHost } from '../../runtime/service-host.ts';
import { eventually, freePorts } from '../support/ports.ts';
import { closeAll, writeOnce } from './cluster/support.ts';

/** A logger whose records the test can read. */
const recordingLogger = (records: Record<string, unknown>[]) =>
  pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) });

/** The built-in KV service behind a gate: until released, every apply step waits (a busy service). */
const heldKvService = () => {
  const kv = new KvServiceHost();
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const applyNow = kv.apply.bind(kv);
  const service: ServiceHost = Object.assign(kv, {
    apply: async (entries: readonly LogEntry[], options?: ApplyOptions) => {
      await gate;
      return applyNow(entries, options);
    },
  });
  return { service, kv, release: () => release() };
};

/** What the tests read from `Member.describe()`. */
interface Described {
  readonly snapshotIndex: number;
  readonly log: { readonly firstIndex: number; readonly lastIndex: number; readonly durableIndex: number };
}
const described = (member: Member) => member.describe() as Described;

interface LeaderRecord {
  readonly snapshot: { readonly index: number; readonly term: number; readonly data: Uint8Array };
  readonly after: LogEntry[];
  readonly acknowledged: Map<string, string>;
}

/**
 * Run a single-member cluster: write `before` keys, snapshot, write `after` more; stop it and read back its
 * snapshot and the log after it.
 */
const recordLeader = async (root: string, before: number, after: number): Promise<LeaderRecord> => {
  const [clientPort, peerPort] = await freePorts(2);
  const config = validateClusterConfig({
    members: [{ id: 0, host: '127.0.0.1', clientPort, peerPort }],
    dir: join(root, 'leader'),
  });
  const member = await Member.start({ config, memberId: 0, logger: pino({ level: 'silent' }) });
  const acknowledged = new Map<string, string>();
  try {
    const client = await ChorusClient.connect({
      endpoints: [`127.0.0.1:${clientPort}`],
      commandTimeoutMs: 10_000,
    });
    const write = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await writeOnce(client, `k${i}`, `v${i}`);
        acknowledged.set(`k${i}`, `v${i}`);
      }
    };
    await write(0, before);
    const applied = member.status().appliedIndex;
    member.request({ type: 'REQUEST_SNAPSHOT' });
    await eventually(() => described(member).snapshotIndex >= applied, 'the leader snapshot', 10_000);
    await write(before, before + after);
    await closeAll([client]);
  } finally {
    await member.stop();
  }
  const store = await openMemberStore(join(config.dir, 'member-0'));
  try {
    const plan = store.recoveryPlan();
    const set = plan.snapshotSet;
    if (set === undefined) throw new Error('the leader recorded no snapshot');
    const part = (serviceId: number) => {
      const found = plan.snapshots.find((s) => s.entry.serviceId === serviceId);
      return found ? store.snapshots.load(found.entry.snapshotId) : null;
    };
    const data = pack({ module: part(CONSENSUS_MODULE_SERVICE_ID), service: part(SERVICE_SNAPSHOT_ID) });
    return {
      snapshot: { index: set.logIndex, term: set.term, data },
      after: store.log.read(set.logIndex + 1),
      acknowledged,
    };
  } finally {
    await store.close();
  }
};

/** Member 2 of three (the others are not running; the test speaks for member 1), with timeouts long
 * enough that it never stands for election while the test plays its leader. */
const followerConfig = async (
  root: string,
  snapshot?: { everyEntries: null; everyBytes: null; keep: number },
) => {
  const ports = await freePorts(6);
  return validateClusterConfig({
    members: [0, 1, 2].map((id) => ({
      id,
      host: '127.0.0.1',
      clientPort: ports[2 * id],
      peerPort: ports[2 * id + 1],
    })),
    dir: join(root, 'cluster'),
    peerAuthentication: { secrets: [newSecret()] },
    startupCanvassTimeoutMs: 60_000,
    electionTimeoutMs: 60_000,
    leaderHeartbeatTimeoutMs: 60_000,
    sessionTimeoutMs: 300_000,
    ...(snapshot ? { snapshot } : {}),
  });
};

/** A follower's stale log: `count` entries of `term` that the service ignores. */
const staleEntries = (count: number, term: number): LogEntry[] =>
  Array.from({ length: count }, (_, i) => ({
    index: i + 1,
    term,
    timestamp: 1,
    kind: EntryKind.TIMER_EVENT,
    payload: new Uint8Array(0),
  }));

describe('member: storage effects take effect in the order the consensus module emitted them', function () {
  this.timeout(30_000);
  let root: string;
  const members: Member[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'chorus-member-storage-'));
  });
  afterEach(async () => {
    for (const member of members.splice(0)) await member.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("a busy follower installs the leader's snapshot before appending the entries that follow it (issue 10 §3)", async () => {
    const leader = await recordLeader(root, 30, 5);
    const { snapshot, after } = leader;
    expect(snapshot.index, 'the leader snapshotted past the follower’s log').to.be.greaterThan(12);
    expect(after.length).to.be.greaterThan(0);
    const last = after[after.length - 1].index;

    // The follower: member 2 of three (the others are not running; the test speaks for member 1). Its
    // timeouts are long, so it never stands for election while the test plays its leader.
    const config = await followerConfig(root);
    const records: Record<string, unknown>[] = [];
    const fatal = () => records.filter((r) => Number(r.level) >= 50).map((r) => String(r.msg));
    const { service, kv, release } = heldKvService();
    const follower = await Member.start({ config, memberId: 2, logger: recordingLogger(records), service });
    members.push(follower);
    const term = Math.max(snapshot.term, follower.status().term + 1);
    const fromLeader = (message: PeerMessage) => follower.request({ type: 'PEER_MESSAGE', from: 1, message });

    // A stale log of 10 entries, 5 of them committed: their apply step waits on the busy service.
    const stale = staleEntries(10, snapshot.term);
    fromLeader({
      type: 'APPEND',
      term,
      prevIndex: 0,
      prevTerm: 0,
      entries: stale,
      commitIndex: 5,
      leaderLastIndex: 10,
    });
    await eventually(
      () => described(follower).log.durableIndex === 10 && follower.status().commitIndex === 5,
      'the stale log flushed and partly committed',
    );

    // The leader has purged past it: its snapshot, then the entries after it.
    fromLeader({
      type: 'INSTALL_SNAPSHOT',
      term,
      index: snapshot.index,
      snapshotTerm: snapshot.term,
      data: snapshot.data,
    });
    fromLeader({
      type: 'APPEND',
      term,
      prevIndex: snapshot.index,
      prevTerm: snapshot.term,
      entries: after,
      commitIndex: last,
      leaderLastIndex: last,
    });
    await eventually(() => {
      const { log } = described(follower);
      return fatal().length > 0 || (log.firstIndex === snapshot.index + 1 && log.durableIndex === last);
    }, 'the snapshot installed and the entries after it flushed, while the service is still busy');
    expect(fatal(), 'records at level error or above').to.deep.equal([]);
    expect(follower.status().commitIndex).to.equal(last);

    // The service catches up: the snapshot's state, then the entries after it, in order.
    release();
    await eventually(
      () => [...leader.acknowledged].every(([key, value]) => kv.service.get(key) === value),
      'every write the leader acknowledged applied on the follower',
    );
    expect(fatal(), 'records at level error or above').to.deep.equal([]);
    expect(records.some((r) => r.msg === 'snapshot installed from the leader')).to.equal(true);
  });

  it("a snapshot the follower was taking when the leader's arrived is not recorded over the leader's", async () => {
    const leader = await recordLeader(root, 30, 5);
    const { snapshot, after } = leader;
    const last = after[after.length - 1].index;
    // Snapshots only when asked, keeping one set: a set recorded after the leader's would be the only one kept.
    const config = await followerConfig(root, { everyEntries: null, everyBytes: null, keep: 1 });
    const records: Record<string, unknown>[] = [];
    const fatal = () => records.filter((r) => Number(r.level) >= 50).map((r) => String(r.msg));
    const { service, kv, release } = heldKvService();
    const follower = await Member.start({ config, memberId: 2, logger: recordingLogger(records), service });
    members.push(follower);
    const term = Math.max(snapshot.term, follower.status().term + 1);
    const fromLeader = (message: PeerMessage) => follower.request({ type: 'PEER_MESSAGE', from: 1, message });

    // Ten entries committed; the follower's own snapshot of them waits behind their (held) apply.
    fromLeader({
      type: 'APPEND',
      term,
      prevIndex: 0,
      prevTerm: 0,
      entries: staleEntries(10, snapshot.term),
      commitIndex: 10,
      leaderLastIndex: 10,
    });
    await eventually(() => follower.status().commitIndex === 10, 'the ten entries committed');
    follower.request({ type: 'REQUEST_SNAPSHOT' });
    // Meanwhile the leader's snapshot, and the entries after it.
    fromLeader({
      type: 'INSTALL_SNAPSHOT',
      term,
      index: snapshot.index,
      snapshotTerm: snapshot.term,
      data: snapshot.data,
    });
    fromLeader({
      type: 'APPEND',
      term,
      prevIndex: snapshot.index,
      prevTerm: snapshot.term,
      entries: after,
      commitIndex: last,
      leaderLastIndex: last,
    });
    await eventually(
      () => fatal().length > 0 || described(follower).log.durableIndex === last,
      'the snapshot installed and the entries after it flushed',
    );
    release();
    await eventually(
      () =>
        fatal().length > 0 || [...leader.acknowledged].every(([key, value]) => kv.service.get(key) === value),
      'every write the leader acknowledged applied on the follower',
    );
    members.splice(members.indexOf(follower), 1);
    await follower.stop();
    expect(fatal(), 'records at level error or above').to.deep.equal([]);

    // What a restart would load: the leader's snapshot, and the log after it.
    const store = await openMemberStore(join(config.dir, 'member-2'));
    try {
      const sets = store.recordingLog.snapshotSets().map((set) => set.logIndex);
      expect(sets, 'snapshot sets recorded, newest first').to.deep.equal([snapshot.index]);
      const plan = store.recoveryPlan();
      expect([plan.snapshotSet?.logIndex, plan.replayFrom, plan.replayTo]).to.deep.equal([
        snapshot.index,
        snapshot.index + 1,
        last,
      ]);
    } finally {
      await store.close();
    }
  });
});

/** A promise and the functions that settle it. */
const deferred = () => {
  let resolve: () => void = () => {};
  let reject: (error: Error) => void = () => {};
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

/** Let every queued promise reaction run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('StorageSequence: the order a member gives the stores its storage effects', () => {
  const failures: string[] = [];
  const events: string[] = [];
  let sequence: StorageSequence;
  /** A step that records when it starts and completes, and settles when the test says so. */
  const step = (name: string, options: { barrier?: boolean } = {}) => {
    const written = deferred();
    sequence.run({
      what: name,
      ...options,
      start: () => {
        events.push(`start ${name}`);
        return written.promise;
      },
      done: () => void events.push(`done ${name}`),
    });
    return written;
  };

  beforeEach(() => {
    failures.length = 0;
    events.length = 0;
    sequence = new StorageSequence((error, what) => void failures.push(`${what}: ${error.message}`));
  });

  it('starts steps at once, in order, until a barrier; the steps after it start only once it has completed', async () => {
    const a = step('append 1');
    const install = step('install', { barrier: true });
    const b = step('append 2');
    step('truncate');
    expect(events).to.deep.equal(['start append 1', 'start install']);
    expect(sequence.held).to.equal(2);
    a.resolve();
    b.resolve();
    await settle();
    expect(events).to.deep.equal(['start append 1', 'start install', 'done append 1']);
    install.resolve();
    await settle();
    expect(events).to.deep.equal([
      'start append 1',
      'start install',
      'done append 1',
      'start append 2',
      'start truncate',
      'done install',
      'done append 2',
    ]);
    expect(failures).to.deep.equal([]);
  });

  it('reports a refusal, a synchronous throw or a throwing completion once, and starts nothing after it', async () => {
    const install = step('install', { barrier: true });
    step('append');
    install.reject(new Error('INVALID_ARGUMENT: refused'));
    await settle();
    expect(failures).to.deep.equal(['install: INVALID_ARGUMENT: refused']);
    expect(events).to.deep.equal(['start install']);
    step('after the failure');
    expect(events).to.deep.equal(['start install']);

    sequence = new StorageSequence((error, what) => void failures.push(`${what}: ${error.message}`));
    failures.length = 0;
    sequence.run({
      what: 'node state save',
      start: () => {
        throw new Error('thrown');
      },
    });
    await settle();
    expect(failures).to.deep.equal(['node state save: thrown']);

    sequence = new StorageSequence((error, what) => void failures.push(`${what}: ${error.message}`));
    failures.length = 0;
    sequence.run({
      what: 'log append',
      start: () => Promise.resolve(),
      done: () => {
        throw new Error('the core refused the completion');
      },
    });
    await settle();
    expect(failures).to.deep.equal(['log append (on completion): the core refused the completion']);
  });

  it('close drops the steps held behind a barrier and waits for the barrier in flight', async () => {
    const install = step('install', { barrier: true });
    step('append');
    let closed = false;
    const closing = sequence.close().then(() => {
      closed = true;
    });
    await settle();
    expect(closed, 'closed while the install is in flight').to.equal(false);
    install.resolve();
    await closing;
    expect(events).to.deep.equal(['start install']);
    expect(sequence.held).to.equal(0);
  });
});
