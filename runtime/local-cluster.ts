// A local multi-process cluster: each member a real `chorus member` process on loopback, with its own
// directory under one base directory. Used by `npx chorus cluster up`, the demo, the process-level tests
// and the cluster benchmarks. It follows each member's election and role from its log lines.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chorusCommand } from './build-kind.ts';
import {
  adminHttpUrl,
  type ClusterConfig,
  type ClusterConfigInput,
  validateClusterConfig,
} from './config.ts';

/** The file of peer secrets a local cluster writes next to its configuration. */
export const PEER_SECRET_FILE = 'peer-secret';

/** A fresh secret: 32 random bytes from the OS's CSPRNG, in base64. */
export const newSecret = (): string => randomBytes(32).toString('base64');

/** A free TCP port on loopback (the OS picks it; it is released before being returned). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });

export const freePorts = async (count: number): Promise<number[]> => {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
};

/** A configuration of `count` members on free loopback ports, with a peer secret file in `dir`. */
const loopbackConfig = async (
  count: number,
  dir: string,
  overrides: Partial<ClusterConfigInput> | undefined,
): Promise<ClusterConfig> => {
  const ports = await freePorts(count * 3);
  // The peer secret, in a file only this user can read, next to the configuration that names it.
  const secretFile = join(dir, PEER_SECRET_FILE);
  if (!existsSync(secretFile)) writeFileSync(secretFile, `${newSecret()}\n`, { mode: 0o600 });
  return validateClusterConfig({
    members: Array.from({ length: count }, (_, id) => ({
      id,
      host: '127.0.0.1',
      clientPort: ports[3 * id],
      peerPort: ports[3 * id + 1],
      adminHttpPort: ports[3 * id + 2],
    })),
    dir: join(dir, 'data'),
    peerAuthentication: { secretFile },
    ...overrides,
  });
};

/** What the cluster knows of one member from its log lines. */
export interface MemberView {
  readonly id: number;
  process: ChildProcess | null;
  running: boolean;
  role: string;
  electionState: string;
  term: number;
  /** Lines the member printed (JSON log records), newest last; bounded. */
  readonly lines: string[];
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
}

export interface LocalClusterOptions {
  readonly members?: number;
  /** Base directory; a fresh temporary one if not given. */
  readonly dir?: string;
  /**
   * Run this configuration as it is (its ports, directory, services and secrets) instead of one on free
   * loopback ports; `members` and `overrides` are then ignored. It is written to `dir`/cluster.json.
   */
  readonly config?: ClusterConfig;
  /** Configuration fields to override (timeouts, limits, ...). */
  readonly overrides?: Partial<ClusterConfigInput>;
  readonly logLevel?: string;
  /** Every log record a member prints, parsed. */
  readonly onRecord?: (memberId: number, record: Record<string, unknown>) => void;
  /** Remove the directory on close (default: only if it was a fresh temporary one). */
  readonly removeOnClose?: boolean;
  /** A command to run each member under, e.g. `ip netns exec NS` (it must exec the member, not fork it). */
  readonly commandPrefix?: (memberId: number) => readonly string[];
}

const MAX_LINES = 2000;

export class LocalCluster {
  readonly views: MemberView[];
  private readonly removeOnClose: boolean;

  private constructor(
    readonly config: ClusterConfig,
    readonly configFile: string,
    private readonly options: LocalClusterOptions,
    removeOnClose: boolean,
  ) {
    this.removeOnClose = removeOnClose;
    this.views = config.members.map((m) => ({
      id: m.id,
      process: null,
      running: false,
      role: 'FOLLOWER',
      electionState: 'INIT',
      term: 0,
      lines: [],
      exitCode: null,
      exitSignal: null,
    }));
  }

  /** Write the configuration (one on free loopback ports unless `config` is given) and start every member. */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const count = options.members ?? 3;
    const fresh = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'chorus-cluster-'));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const config = options.config ?? (await loopbackConfig(count, dir, options.overrides));
    const configFile = join(dir, 'cluster.json');
    // 0600: a configuration may hold client tokens.
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    const cluster = new LocalCluster(config, configFile, options, options.removeOnClose ?? fresh);
    for (const member of config.members) cluster.startMember(member.id);
    return cluster;
  }

  get dir(): string {
    return dirname(this.configFile);
  }

  /** Client endpoints (`host:port`) of every member. */
  endpoints(): string[] {
    return this.config.members.map((m) => `${m.host}:${m.clientPort}`);
  }

  /** Each member's admin HTTP base URL (metrics, the inspector's feed), or null where it has none. */
  adminUrls(): (string | null)[] {
    return this.config.members.map((m) => adminHttpUrl(this.config, m));
  }

  memberDir(id: number): string {
    return join(this.config.dir, `member-${id}`);
  }

  /** The member currently leading (LEADER_READY in the highest term among running members), or null. */
  leader(): number | null {
    let best: MemberView | null = null;
    for (const view of this.views) {
      if (view.running && view.role === 'LEADER' && (best === null || view.term > best.term)) best = view;
    }
    return best?.id ?? null;
  }

  startMember(id: number, extraArgs: readonly string[] = []): void {
    const view = this.views[id];
    if (view.running) throw new Error(`member ${id} is already running`);
    const argv = [
      ...(this.options.commandPrefix?.(id) ?? []),
      ...chorusCommand(),
      'member',
      '--config',
      this.configFile,
      '--id',
      String(id),
      ...extraArgs,
    ];
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CHORUS_LOG_LEVEL: this.options.logLevel ?? 'info' },
    });
    view.process = child;
    view.running = true;
    view.role = 'FOLLOWER';
    view.electionState = 'INIT';
    view.term = 0;
    view.exitCode = null;
    view.exitSignal = null;
    const onLine = (line: string) => {
      if (line.length === 0) return;
      view.lines.push(line);
      if (view.lines.length > MAX_LINES) view.lines.splice(0, view.lines.length - MAX_LINES);
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line);
      } catch {
        record = { msg: line };
      }
      const msg = String(record.msg ?? '');
      if (msg.startsWith('ROLE_CHANGE')) view.role = String(record.to);
      if (msg.startsWith('ELECTION_STATE_CHANGE')) view.electionState = String(record.to);
      if (typeof record.term === 'number') view.term = Math.max(view.term, record.term);
      this.options.onRecord?.(id, record);
    };
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        onLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      if (view.process !== child) return;
      view.running = false;
      view.role = 'FOLLOWER';
      view.exitCode = code;
      view.exitSignal = signal;
    });
  }

  /** Send a signal; resolves once the process has exited. */
  async signal(
    id: number,
    signal: NodeJS.Signals,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const view = this.views[id];
    const child = view.process;
    if (!child || !view.running) return { code: view.exitCode, signal: view.exitSignal };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, sig) => resolve({ code, signal: sig })),
    );
    child.kill(signal);
    return exited;
  }

  kill(id: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.signal(id, 'SIGKILL');
  }

  /** Poll until `check` holds; rejects naming `what` after `timeoutMs`. */
  async until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) {
        const states = this.views
          .map((v) => `${v.id}:${v.running ? `${v.role}/${v.electionState}/t${v.term}` : 'down'}`)
          .join(' ');
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (members ${states})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Wait for a leader among running members and return its id. */
  async waitForLeader(timeoutMs = 10_000): Promise<number> {
    await this.until(() => this.leader() !== null, 'a leader', timeoutMs);
    return this.leader()!;
  }

  /** Stop every member (SIGKILL unless `graceful`), and remove the directory if it was temporary. */
  async close({ graceful = false }: { graceful?: boolean } = {}): Promise<void> {
    await Promise.all(this.views.map((v) => this.signal(v.id, graceful ? 'SIGTERM' : 'SIGKILL')));
    if (this.removeOnClose) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One line for a person: the member, and what its log record says (elections and roles in full). */
export const formatRecord = (memberId: number, record: Record<string, unknown>): string => {
  const level = Number(record.level ?? 30);
  const tag = level >= 50 ? 'ERROR ' : level >= 40 ? 'WARN  ' : '';
  return `member ${memberId}  ${tag}${String(record.msg ?? '')}`;
};
