// Helpers for the process-level tests: a LocalCluster that also follows each member's start-up report and
// whether its election has settled, KV helpers that check every reply, and a raw client connection that
// speaks the client protocol frame by frame (to send what the client library never would: a duplicate
// correlation id, another protocol version, an idle session).

import { expect } from 'chai';
import { unpack } from 'msgpackr';
import { encodeKvCommand, type KvCommand, type KvResult } from '../../../actors/services/kv.ts';
import { SESSION_PROTOCOL_VERSION } from '../../../machines/client-session.ts';
import { openMemberStore } from '../../../persistence/index.ts';
import { ActorRuntime } from '../../../runtime/actor-runtime/actor-runtime.ts';
import { ChorusClient, type ClientOptions } from '../../../runtime/client/client.ts';
import { type ClusterConfigInput, clusterConfigSchema } from '../../../runtime/config.ts';
import { LocalCluster } from '../../../runtime/local-cluster.ts';
import { ClientKind } from '../../../runtime/wire/client-frames.ts';
import { dial, type FramedConnection } from '../../../runtime/wire/transport.ts';

const DEFAULTS = clusterConfigSchema.parse({
  members: [{ id: 0, host: '127.0.0.1', clientPort: 1, peerPort: 2 }],
});

/**
 * One failover with the default timing the tests keep: followers notice a silent leader
 * (leaderHeartbeatTimeoutMs), then elect one (electionTimeoutMs). 900 ms with the defaults.
 */
export const FAILOVER_MS = DEFAULTS.leaderHeartbeatTimeoutMs + DEFAULTS.electionTimeoutMs;

/** What a member reported when it opened its store (the `member store opened and validated` record). */
export interface StartupReport {
  readonly term: number;
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  readonly scanned: number;
}

/**
 * A LocalCluster plus what the tests need to know from each member's log records: its latest start-up
 * report, and whether its current election has finished (election state CLOSED, which a leader reaches
 * once its term's first entry commits and a follower once it has caught up with the leader).
 */
export class TestCluster {
  readonly startups: (StartupReport | null)[];
  private readonly settled: boolean[];

  private constructor(
    readonly cluster: LocalCluster,
    startups: (StartupReport | null)[],
    settled: boolean[],
  ) {
    this.startups = startups;
    this.settled = settled;
  }

  static async start(
    options: { members?: number; overrides?: Partial<ClusterConfigInput> } = {},
  ): Promise<TestCluster> {
    const count = options.members ?? 3;
    const startups: (StartupReport | null)[] = Array.from({ length: count }, () => null);
    const settled = Array.from({ length: count }, () => false);
    const cluster = await LocalCluster.start({
      members: count,
      ...(options.overrides ? { overrides: options.overrides } : {}),
      onRecord: (id, record) => {
        const msg = String(record.msg ?? '');
        if (msg === 'member store opened and validated') {
          startups[id] = {
            term: Number(record.term),
            snapshotIndex: Number(record.snapshotIndex),
            lastIndex: Number(record.lastIndex),
            scanned: Number(record.scanned),
          };
        }
        if (msg.startsWith('ELECTION_STATE_CHANGE')) settled[id] = record.to === 'CLOSED';
      },
    });
    return new TestCluster(cluster, startups, settled);
  }

  endpoints(): string[] {
    return this.cluster.endpoints();
  }

  endpoint(id: number): string {
    return this.cluster.endpoints()[id];
  }

  running(id: number): boolean {
    return this.cluster.views[id].running;
  }

  /** (Re)start a stopped member; its start-up report and election state start afresh. */
  restart(id: number): void {
    this.startups[id] = null;
    this.settled[id] = false;
    this.cluster.startMember(id);
  }

  /** Every member running, a leader, and every member's election finished (followers caught up). */
  async whole(timeoutMs = 15_000): Promise<number> {
    for (const view of this.cluster.views) if (!view.running) this.restart(view.id);
    await this.cluster.until(
      () =>
        this.cluster.leader() !== null && this.cluster.views.every((v) => v.running && this.settled[v.id]),
      'every member running with its election settled',
      timeoutMs,
    );
    return this.cluster.leader() as number;
  }

  /**
   * Wait for a ready leader other than `previous` (a running member in a higher term whose first entry
   * of the term has committed, so it takes client work); the ms it took from `since`.
   */
  async newLeader(previous: number, since: number, timeoutMs = 10_000): Promise<{ id: number; ms: number }> {
    await this.cluster.until(
      () => {
        const leader = this.cluster.leader();
        return leader !== null && leader !== previous && this.settled[leader];
      },
      `a ready leader other than member ${previous}`,
      timeoutMs,
    );
    return { id: this.cluster.leader() as number, ms: performance.now() - since };
  }

  close(): Promise<void> {
    return this.cluster.close();
  }
}

export const connectClient = (
  cluster: TestCluster,
  options: Partial<ClientOptions> = {},
): Promise<ChorusClient> =>
  ChorusClient.connect({ endpoints: cluster.endpoints(), commandTimeoutMs: 15_000, ...options });

export const kv = async (client: ChorusClient, command: KvCommand): Promise<KvResult> =>
  unpack(await client.send(encodeKvCommand(command))) as KvResult;

/**
 * A write whose double application would show in its reply: compare-and-set from "absent". Applied once,
 * the answer is `{ ok: true }`; a second application (a retry applied again instead of recognised as a
 * duplicate) would answer `{ ok: false }`, because the key is no longer absent.
 */
export const writeOnce = async (client: ChorusClient, key: string, value: string): Promise<void> => {
  const reply = await kv(client, { op: 'cas', key, expected: null, value });
  expect(reply, `reply to the one write of ${key}`).to.deep.equal({ ok: true });
};

/** Read every key back through the log (a get is a committed command) and compare with what was acknowledged. */
export const expectAllPresent = async (
  client: ChorusClient,
  acknowledged: ReadonlyMap<string, string>,
): Promise<void> => {
  const keys = [...acknowledged.keys()];
  const values = await Promise.all(keys.map((key) => kv(client, { op: 'get', key })));
  const missing = keys.filter(
    (key, i) => (values[i] as { value: string | null }).value !== acknowledged.get(key),
  );
  expect(missing, `${missing.length} of ${keys.length} acknowledged writes missing or wrong`).to.deep.equal(
    [],
  );
};

/**
 * Writers: `count` clients, each writing its own keys (`prefix/c<i>/<n>`) with writeOnce, `batch` at a
 * time, until stopped. Every acknowledged write goes into `acknowledged`; a write that fails otherwise is
 * recorded in `failures` (with its key), which a test expects to stay empty.
 */
export class Writers {
  readonly acknowledged = new Map<string, string>();
  readonly failures: string[] = [];
  /** When each client's writes were acknowledged (performance clock), in order, per client. */
  readonly acknowledgedAt: number[][];
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(
    readonly clients: readonly ChorusClient[],
    private readonly prefix: string,
    private readonly batch = 4,
  ) {
    this.acknowledgedAt = clients.map(() => []);
  }

  start(): this {
    this.loops = this.clients.map((client, i) => this.loop(client, i));
    return this;
  }

  private async loop(client: ChorusClient, i: number): Promise<void> {
    let n = 0;
    while (!this.stopped && this.failures.length === 0) {
      const writes = Array.from({ length: this.batch }, () => {
        const key = `${this.prefix}/c${i}/${n++}`;
        const value = `v${n}`;
        return writeOnce(client, key, value).then(
          () => {
            this.acknowledged.set(key, value);
            this.acknowledgedAt[i].push(performance.now());
          },
          (error: Error) => void this.failures.push(`${key}: ${error.message}`),
        );
      });
      await Promise.all(writes);
    }
  }

  /** Resolve once `more` further writes have been acknowledged. */
  async acknowledge(more: number, cluster: TestCluster, timeoutMs = 15_000): Promise<void> {
    const target = this.acknowledged.size + more;
    await cluster.cluster.until(
      () => this.acknowledged.size >= target || this.failures.length > 0,
      `${target} acknowledged writes`,
      timeoutMs,
    );
    expect(this.failures, 'writes that failed').to.deep.equal([]);
  }

  /**
   * The longest time any one client went without an acknowledged write between `from` and its last
   * acknowledgement (the availability a client observes), and which client it was.
   */
  longestGap(from: number): { ms: number; client: number } {
    let longest = { ms: 0, client: -1 };
    this.acknowledgedAt.forEach((times, client) => {
      let previous = from;
      for (const at of times) {
        if (at < from) continue;
        if (at - previous > longest.ms) longest = { ms: at - previous, client };
        previous = at;
      }
    });
    return longest;
  }

  /** Stop after the writes in flight are answered (or have failed). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

// ---------------------------------------------------------------------------------------------------
// A raw client connection
// ---------------------------------------------------------------------------------------------------

export interface ReceivedFrame {
  readonly kind: number;
  // biome-ignore lint/suspicious/noExplicitAny: frame bodies are inspected field by field in the tests
  readonly body: any;
}

/** One TCP connection to a member's client port, speaking CLIENT_REQUEST frames by hand. */
export class RawConnection {
  readonly frames: ReceivedFrame[] = [];
  closeReason: string | null = null;
  private waiters: (() => void)[] = [];

  private constructor(readonly connection: FramedConnection) {
    connection.on('frame', (kind, body) => {
      this.frames.push({ kind, body });
      this.wake();
    });
    connection.on('close', (reason) => {
      this.closeReason = reason;
      this.wake();
    });
  }

  static async open(endpoint: string): Promise<RawConnection> {
    const at = endpoint.lastIndexOf(':');
    const connection = await dial(endpoint.slice(0, at), Number(endpoint.slice(at + 1)), {
      maxFrameBytes: 1 << 20,
      name: `member at ${endpoint}`,
    });
    return new RawConnection(connection);
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  request(body: object): void {
    this.connection.send(ClientKind.CLIENT_REQUEST, body);
  }

  /** The first frame not yet taken that matches, waiting for it; fails naming `what` otherwise. */
  async take(
    match: (frame: ReceivedFrame) => boolean,
    what: string,
    timeoutMs = 5000,
  ): Promise<ReceivedFrame> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const at = this.frames.findIndex(match);
      if (at >= 0) return this.frames.splice(at, 1)[0];
      const left = deadline - performance.now();
      if (this.closeReason !== null || left <= 0) {
        throw new Error(
          `no ${what} (${this.closeReason !== null ? `connection closed: ${this.closeReason}` : `after ${timeoutMs} ms`}); ` +
            `frames received: ${JSON.stringify(this.frames)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next session event (OK, ERROR, REDIRECT, CLOSED, ...). */
  sessionEvent(what = 'session event', timeoutMs = 5000): Promise<ReceivedFrame> {
    return this.take((f) => f.kind === ClientKind.SESSION_EVENT, what, timeoutMs);
  }

  /** Resolve with the reason once the member has closed the connection. */
  async closed(timeoutMs = 5000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    while (this.closeReason === null) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closeReason;
  }

  /** CONNECT; a resume presents the session's token (`resumeToken`, from its OK) unless told otherwise. */
  connect(
    protocolVersion = SESSION_PROTOCOL_VERSION,
    resumeSessionId: number | null = null,
    resumeToken: Uint8Array | null = null,
  ): void {
    this.request({
      type: 'CONNECT',
      credentials: new Uint8Array(0),
      protocolVersion,
      resumeSessionId,
      ...(resumeToken ? { resumeToken } : {}),
    });
  }

  /** The token from the last OK that carried one: the proof needed to resume that session. */
  resumeToken: Uint8Array | null = null;

  /** CONNECT and wait for OK; the session id (its token is kept in `resumeToken`). */
  async openSession(): Promise<number> {
    this.connect();
    const event = await this.sessionEvent('OK for CONNECT');
    expect(event.body.code, JSON.stringify(event.body)).to.equal('OK');
    this.resumeToken = new Uint8Array(event.body.resumeToken);
    return event.body.sessionId as number;
  }

  /** Send a KV command; `lowestAwaited` 0 (the default) asks the cluster to forget none of the session's replies. */
  sendCommand(sessionId: number, correlationId: number, command: KvCommand, lowestAwaited = 0): void {
    this.request({
      type: 'SESSION_MESSAGE',
      sessionId,
      correlationId,
      lowestAwaited,
      body: encodeKvCommand(command),
    });
  }

  /** The REPLY to `correlationId`, decoded. */
  async reply(correlationId: number, timeoutMs = 5000): Promise<KvResult> {
    const frame = await this.take(
      (f) => f.kind === ClientKind.REPLY && f.body.correlationId === correlationId,
      `reply to correlation id ${correlationId}`,
      timeoutMs,
    );
    return unpack(frame.body.payload) as KvResult;
  }

  close(): void {
    this.connection.close('test done');
  }
}

/** Close every client. */
export const closeAll = (clients: readonly ChorusClient[]) => Promise.all(clients.map((c) => c.close()));

/** SIGSTOP / SIGCONT a member without waiting for it to exit (LocalCluster.signal waits for the exit). */
export const freeze = (cluster: TestCluster, id: number, signal: 'SIGSTOP' | 'SIGCONT'): void => {
  const child = cluster.cluster.views[id].process;
  if (child && cluster.running(id)) child.kill(signal);
};

/**
 * The hooks of a describe block that shares one cluster: started before all its tests, made whole before
 * each, frozen members resumed and raw connections closed after each, closed after all.
 */
export const shareCluster = (
  start: () => Promise<TestCluster>,
  use: (cluster: TestCluster) => void,
  current: () => TestCluster | undefined,
  frozen: Set<number>,
  raws: RawConnection[] = [],
): void => {
  before(async () => {
    use(await start());
  });
  beforeEach(async () => {
    await current()?.whole();
  });
  afterEach(() => {
    const cluster = current();
    if (cluster) for (const id of frozen) freeze(cluster, id, 'SIGCONT');
    frozen.clear();
    for (const connection of raws.splice(0)) connection.close();
  });
  after(async () => {
    await current()?.close();
  });
};

/**
 * Kill every member, then replay each member's own snapshot and log (its store, on one shard) and hand the
 * replayed actor runtime to `check`: live state against a fresh replay, member by member.
 */
export const replayEachMember = async (
  cluster: TestCluster,
  servicesModule: string,
  check: (runtime: ActorRuntime, memberId: number) => Promise<void>,
): Promise<void> => {
  for (const v of cluster.cluster.views) await cluster.cluster.kill(v.id);
  for (const v of cluster.cluster.views) {
    const store = await openMemberStore(cluster.cluster.memberDir(v.id), {
      mapSizeBytes: cluster.cluster.config.mapSizeBytes,
    });
    const runtime = await ActorRuntime.open({ store, shards: 1, servicesModule });
    try {
      await check(runtime, v.id);
    } finally {
      await runtime.close();
      await store.close();
    }
  }
};
