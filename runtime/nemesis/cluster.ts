// The members of a nemesis run: real `chorus member` processes (a LocalCluster), each started inside its
// own network namespace, plus what the checks need from them: which member led in which term (from the
// ROLE_CHANGE / ELECTION_STATE_CHANGE records), every exit and whether the nemesis caused it, and the
// operator actions of the cluster tool (through each member's admin socket, as `chorus tool` does).

import { adminRequest } from '../admin.ts';
import type { ClusterConfigInput } from '../config.ts';
import { LocalCluster } from '../local-cluster.ts';
import { Links, memberAddress, memberNamespace } from './network.ts';

const CLIENT_PORT = 7000;
const PEER_PORT = 7001;

export interface MemberExit {
  readonly id: number;
  readonly at: number;
  readonly code: number | null;
  readonly signal: string | null;
  /** True when the nemesis killed or stopped the member. */
  readonly caused: boolean;
  /** The member's last log lines, for an exit the nemesis did not cause. */
  readonly lastLines: readonly string[];
}

/** What `chorus tool DIR describe` reports, the fields the nemesis uses. */
export interface MemberStatus {
  readonly role: string;
  readonly term: number;
  readonly leaderId: number | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly moduleState: string;
}

export interface NemesisClusterOptions {
  readonly members: number;
  readonly dir: string;
  /** Snapshot after this many entries; null: snapshots off (only on request). */
  readonly snapshotEveryEntries: number | null;
  /** The services module to host (absolute path); undefined: the built-in KV service. */
  readonly services?: string;
  readonly startedAt: number;
}

export class NemesisCluster {
  readonly links: Links;
  /** term -> the members that became LEADER in it. */
  readonly leadersByTerm = new Map<number, Set<number>>();
  readonly exits: MemberExit[] = [];
  private readonly settled: boolean[];
  private readonly expecting = new Set<number>();
  readonly paused = new Set<number>();

  private constructor(
    readonly local: LocalCluster,
    private readonly options: NemesisClusterOptions,
    settled: boolean[],
  ) {
    this.settled = settled;
    this.links = new Links(options.members);
  }

  static async start(options: NemesisClusterOptions): Promise<NemesisCluster> {
    const settled = Array.from({ length: options.members }, () => false);
    let cluster: NemesisCluster | null = null;
    const overrides: Partial<ClusterConfigInput> = {
      members: Array.from({ length: options.members }, (_, id) => ({
        id,
        host: memberAddress(id),
        clientPort: CLIENT_PORT,
        peerPort: PEER_PORT,
      })),
      snapshot: { everyEntries: options.snapshotEveryEntries, everyBytes: null, keep: 3 },
      ...(options.services ? { services: options.services } : {}),
    };
    const local = await LocalCluster.start({
      members: options.members,
      dir: options.dir,
      removeOnClose: false,
      overrides,
      commandPrefix: (id) => ['ip', 'netns', 'exec', memberNamespace(id)],
      onRecord: (id, record) => {
        const msg = String(record.msg ?? '');
        if (msg.startsWith('ROLE_CHANGE') && record.to === 'LEADER') {
          const term = Number(record.term);
          const set = cluster?.leadersByTerm.get(term) ?? new Set<number>();
          set.add(id);
          cluster?.leadersByTerm.set(term, set);
        }
        if (msg.startsWith('ELECTION_STATE_CHANGE')) settled[id] = record.to === 'CLOSED';
      },
    });
    cluster = new NemesisCluster(local, options, settled);
    for (let id = 0; id < options.members; id++) cluster.watch(id);
    return cluster;
  }

  get size(): number {
    return this.options.members;
  }

  endpoints(): string[] {
    return this.local.endpoints();
  }

  memberDir(id: number): string {
    return this.local.memberDir(id);
  }

  running(id: number): boolean {
    return this.local.views[id].running;
  }

  /** Running, not paused, its election settled: it answers the cluster tool. */
  ready(id: number): boolean {
    return this.running(id) && !this.paused.has(id) && this.settled[id];
  }

  leader(): number | null {
    const leader = this.local.leader();
    return leader !== null && !this.paused.has(leader) ? leader : null;
  }

  private watch(id: number): void {
    const view = this.local.views[id];
    const child = view.process;
    child?.once('exit', (code, signal) => {
      const caused = this.expecting.delete(id);
      this.paused.delete(id);
      this.settled[id] = false;
      this.exits.push({
        id,
        at: performance.now() - this.options.startedAt,
        code,
        signal,
        caused,
        lastLines: caused ? [] : view.lines.slice(-15),
      });
    });
  }

  /** SIGKILL a member (the nemesis's own doing); resolves once it has exited. */
  async kill(id: number): Promise<void> {
    if (!this.running(id)) return;
    this.expecting.add(id);
    if (this.paused.has(id)) this.local.views[id].process?.kill('SIGCONT');
    await this.local.kill(id);
  }

  restart(id: number): void {
    if (this.running(id)) return;
    this.settled[id] = false;
    this.local.startMember(id);
    this.watch(id);
  }

  pause(id: number): void {
    if (!this.running(id) || this.paused.has(id)) return;
    this.paused.add(id);
    this.local.views[id].process?.kill('SIGSTOP');
  }

  resume(id: number): void {
    if (!this.paused.delete(id)) return;
    this.local.views[id].process?.kill('SIGCONT');
  }

  /** A cluster-tool command on member `id` (the admin socket `chorus tool` uses). */
  tool(
    id: number,
    command: 'status' | 'snapshot' | 'suspend' | 'resume' | 'transfer-leadership',
    to?: number,
  ): Promise<unknown> {
    return adminRequest(this.memberDir(id), { command, ...(to === undefined ? {} : { to }) }, 10_000);
  }

  status(id: number): Promise<MemberStatus> {
    return this.tool(id, 'status') as Promise<MemberStatus>;
  }

  /**
   * Wait until every member is running, unpaused and settled, with a leader, and has applied everything
   * the leader had committed by then (without healing anything). A member back from a crash settles its
   * election long before it has replayed its log; one still replaying is no majority partner yet.
   */
  async untilWhole(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    await this.local.until(
      () =>
        this.leader() !== null &&
        Array.from({ length: this.size }, (_, id) => id).every((id) => this.ready(id)),
      'every member running with its election settled, with a leader',
      timeoutMs,
    );
    const leader = this.leader();
    const committed = leader === null ? 0 : ((await this.status(leader).catch(() => null))?.commitIndex ?? 0);
    for (;;) {
      const applied = await Promise.all(
        Array.from({ length: this.size }, (_, id) =>
          this.status(id).then(
            (s) => s.appliedIndex,
            () => -1,
          ),
        ),
      );
      if (applied.every((a) => a >= committed)) return;
      if (performance.now() > deadline)
        throw new Error(`members did not apply up to ${committed} (applied ${applied.join(', ')})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Every member running and unpaused, links healed, a leader, every election settled. */
  async whole(timeoutMs: number): Promise<number> {
    this.links.heal();
    for (const id of [...this.paused]) this.resume(id);
    for (let id = 0; id < this.size; id++) this.restart(id);
    await this.local.until(
      () => this.leader() !== null && this.settled.every(Boolean),
      'every member running with its election settled',
      timeoutMs,
    );
    return this.leader()!;
  }

  /**
   * Wait until every member has applied the same committed position twice in a row (nothing in flight),
   * so each one's log holds everything committed.
   */
  async quiesce(timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let previous = -1;
    for (;;) {
      const statuses = await Promise.all(
        Array.from({ length: this.size }, (_, id) => this.status(id).catch(() => null)),
      );
      const applied = statuses.map((s) => s?.appliedIndex ?? -1);
      const commits = statuses.map((s) => s?.commitIndex ?? -1);
      const same = applied.every((a) => a === applied[0]) && commits.every((c) => c === applied[0]);
      if (same && applied[0] === previous) return previous;
      previous = same ? applied[0] : -1;
      if (performance.now() > deadline)
        throw new Error(`members did not settle on one applied index: applied ${applied}, commit ${commits}`);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }

  /** SIGKILL every member (counted as caused), and stop any that remain paused. */
  async killAll(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, (_, id) => this.kill(id)));
  }
}
