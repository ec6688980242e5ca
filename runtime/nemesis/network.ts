// The nemesis's network: every member in its own Linux network namespace, all on one bridge, and drop
// rules (nftables) inside the member namespaces to cut links.
//
//   root namespace                 chnem-hub namespace                member namespaces
//   chnem-root 10.77.0.254 ──veth── up0 ─┐
//                                        br0 ── m0 ──veth── eth0 10.77.0.1   (chnem-m0)
//                                         ├──── m1 ──veth── eth0 10.77.0.2   (chnem-m1)
//                                         └──── ...
//
// The bridge lives in a namespace of its own, so traffic between members never crosses the root
// namespace's firewall; the root namespace gets one veth, for the clients (10.77.0.254). Every address
// used lies inside namespaces this module creates. Each member namespace has one nftables table
// (`inet chnem`) with an input and an output chain; a cut is a drop rule on a peer's address there.
//
// One run at a time per machine: `acquireNetwork` takes a lock directory holding its pid. A lock left by
// a process that is gone means a crashed run: its namespaces, processes and veth are removed first.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from '../../persistence/index.ts';

export const NS_PREFIX = 'chnem-';
const HUB = `${NS_PREFIX}hub`;
const ROOT_VETH = `${NS_PREFIX}root`;
export const SUBNET = '10.77.0';
/** The clients' address (root namespace end of the hub's uplink). */
export const CLIENT_ADDRESS = `${SUBNET}.254`;
const LOCK_DIR = join(tmpdir(), 'chorus-nemesis.lock');

export const memberNamespace = (id: number): string => `${NS_PREFIX}m${id}`;
export const memberAddress = (id: number): string => `${SUBNET}.${id + 1}`;

const run = (command: string, args: readonly string[], input?: string): string =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input });

const quiet = (command: string, args: readonly string[]): void => {
  try {
    run(command, args);
  } catch {
    // Cleanup of something that may not exist.
  }
};

const hasCommand = (command: string, args: readonly string[]): boolean => {
  try {
    run(command, args);
    return true;
  } catch {
    return false;
  }
};

/** Why the nemesis cannot run here (not root, `ip` or `nft` missing, no namespaces), or null. */
export const unavailableReason = (): string | null => {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return 'the nemesis needs root (network namespaces and nftables); run it as root, as .ci/run does';
  if (process.platform !== 'linux')
    return `the nemesis needs Linux network namespaces (this is ${process.platform})`;
  if (!hasCommand('ip', ['-V'])) return 'the nemesis needs `ip` (apt-get install -y iproute2)';
  if (!hasCommand('nft', ['--version'])) return 'the nemesis needs `nft` (apt-get install -y nftables)';
  const probe = `${NS_PREFIX}probe-${process.pid}`;
  try {
    run('ip', ['netns', 'add', probe]);
  } catch (error) {
    const detail = String((error as { stderr?: string }).stderr ?? (error as Error).message).trim();
    return `cannot create network namespaces here (${detail}): the nemesis needs CAP_SYS_ADMIN`;
  }
  quiet('ip', ['netns', 'del', probe]);
  return null;
};

/** Our namespaces, as `ip netns list` shows them. */
const ourNamespaces = (): string[] =>
  run('ip', ['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name.startsWith(NS_PREFIX));

/** Remove every namespace, veth and process a nemesis run made (members first, then the network). */
export const removeNetwork = (): void => {
  for (const ns of ourNamespaces()) {
    let pids: number[] = [];
    try {
      pids = run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number);
    } catch {}
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
  for (const ns of ourNamespaces()) quiet('ip', ['netns', 'del', ns]);
  quiet('ip', ['link', 'del', ROOT_VETH]);
};

/**
 * Take the machine's nemesis lock (waiting up to `waitMs` for a live holder), clean up what a crashed
 * run left, and return a release function.
 */
export const acquireLock = async (waitMs = 120_000): Promise<() => void> => {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(join(LOCK_DIR, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8'));
      } catch {}
      if (!Number.isInteger(holder) || holder === process.pid || !pidAlive(holder)) {
        rmSync(LOCK_DIR, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`another nemesis run (pid ${holder}) holds ${LOCK_DIR}; wait for it to end`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  removeNetwork();
  return () => rmSync(LOCK_DIR, { recursive: true, force: true });
};

const nft = (ns: string, script: string): void => {
  run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], script);
};

/** Build the hub, the uplink for clients and one namespace per member. */
export const createNetwork = (members: number): void => {
  run('ip', ['netns', 'add', HUB]);
  run('ip', ['-n', HUB, 'link', 'set', 'lo', 'up']);
  run('ip', ['-n', HUB, 'link', 'add', 'br0', 'type', 'bridge']);
  run('ip', ['-n', HUB, 'link', 'set', 'br0', 'up']);
  run('ip', ['link', 'add', ROOT_VETH, 'type', 'veth', 'peer', 'name', 'up0', 'netns', HUB]);
  run('ip', ['-n', HUB, 'link', 'set', 'up0', 'master', 'br0', 'up']);
  run('ip', ['addr', 'add', `${CLIENT_ADDRESS}/24`, 'dev', ROOT_VETH]);
  run('ip', ['link', 'set', ROOT_VETH, 'up']);
  for (let id = 0; id < members; id++) {
    const ns = memberNamespace(id);
    run('ip', ['netns', 'add', ns]);
    run('ip', ['-n', HUB, 'link', 'add', `m${id}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    run('ip', ['-n', HUB, 'link', 'set', `m${id}`, 'master', 'br0', 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `${memberAddress(id)}/24`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    nft(
      ns,
      [
        'table inet chnem {',
        '  chain input {',
        '    type filter hook input priority 0; policy accept;',
        '  }',
        '  chain output {',
        '    type filter hook output priority 0; policy accept;',
        '  }',
        '}',
      ].join('\n'),
    );
  }
};

/**
 * The links cut, as directed pairs `from>to`: member `to` drops what comes from `from`, and `from`
 * drops what it would send to `to`. Both halves are needed: a one-way loss (an asymmetric cut) drops in
 * one direction only, and TCP then stalls in the way a real one-way fault does.
 */
export class Links {
  private readonly cut = new Set<string>();
  /** Members whose packets to the clients are dropped (replies lost; requests still arrive). */
  private readonly muted = new Set<number>();

  constructor(private readonly members: number) {}

  /** Directed cuts in force, sorted. */
  list(): string[] {
    return [...this.cut].sort();
  }

  /** Replace the cuts with `pairs` (directed [from, to]) and apply them in every member namespace. */
  set(pairs: readonly (readonly [number, number])[]): void {
    this.cut.clear();
    for (const [from, to] of pairs) if (from !== to) this.cut.add(`${from}>${to}`);
    for (let id = 0; id < this.members; id++) this.apply(id);
  }

  /** Drop what `ids` send to the clients (and nothing else), or stop dropping it with []. */
  mute(ids: readonly number[]): void {
    this.muted.clear();
    for (const id of ids) this.muted.add(id);
    for (let id = 0; id < this.members; id++) this.apply(id);
  }

  heal(): void {
    this.muted.clear();
    this.set([]);
  }

  private apply(id: number): void {
    const lines = ['flush table inet chnem'];
    for (const pair of this.cut) {
      const [from, to] = pair.split('>').map(Number);
      if (to === id) lines.push(`add rule inet chnem input ip saddr ${memberAddress(from)} drop`);
      if (from === id) lines.push(`add rule inet chnem output ip daddr ${memberAddress(to)} drop`);
    }
    if (this.muted.has(id)) lines.push(`add rule inet chnem output ip daddr ${CLIENT_ADDRESS} drop`);
    nft(memberNamespace(id), lines.join('\n'));
  }
}

/** Both directions between every member of `a` and every member of `b`. */
export const between = (a: readonly number[], b: readonly number[]): [number, number][] =>
  a.flatMap((x) =>
    b.flatMap((y): [number, number][] => [
      [x, y],
      [y, x],
    ]),
  );
