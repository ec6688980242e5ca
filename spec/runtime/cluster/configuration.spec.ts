// O1: `chorus member` started with a wrong configuration refuses to start, exits non-zero, and names the
// field and the fix — before it opens a store or a port.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { TEST_SECRET } from '../../security/peers.ts';
import { freePorts } from '../../support/ports.ts';

const CHORUS_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'chorus.js');

interface Outcome {
  readonly code: number | null;
  readonly output: string;
}

const runMember = (args: readonly string[]): Promise<Outcome> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHORUS_BIN, 'member', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    // A member that does start would run forever: stop it and report what it printed.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });

/** Run the tasks two at a time; their results in order. */
const inPairs = async <T>(tasks: readonly (() => Promise<T>)[]): Promise<T[]> => {
  const results: T[] = [];
  for (let i = 0; i < tasks.length; i += 2) {
    results.push(...(await Promise.all(tasks.slice(i, i + 2).map((task) => task()))));
  }
  return results;
};

describe('cluster processes: configuration (O1)', function () {
  this.timeout(90_000);
  let dir: string;
  let members: { id: number; host: string; clientPort: number; peerPort: number }[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-o1-'));
    const ports = await freePorts(6);
    members = [0, 1, 2].map((id) => ({
      id,
      host: '127.0.0.1',
      clientPort: ports[2 * id],
      peerPort: ports[2 * id + 1],
    }));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const configFile = (name: string, fields: object): string => {
    const file = join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        members,
        dir: join(dir, `${name}-data`),
        peerAuthentication: { secrets: [TEST_SECRET] },
        ...fields,
      }),
    );
    return file;
  };

  it('O1: `chorus member` with a wrong configuration refuses to start, naming the field and the fix, exit non-zero', async () => {
    const cases = [
      {
        file: configFile('heartbeat', { leaderHeartbeatIntervalMs: 400 }),
        id: '0',
        expected: ['leaderHeartbeatIntervalMs', 'make the interval at most a third of the timeout'],
      },
      {
        file: configFile('session-timeout', { sessionTimeoutMs: 1000 }),
        id: '0',
        expected: ['sessionTimeoutMs', 'more than twice a failover'],
      },
      {
        file: configFile('typo', { electionTimeout: 400 }),
        id: '0',
        expected: ['unknown field "electionTimeout"', 'check the spelling'],
      },
      {
        file: configFile('clash', {
          members: [members[0], { ...members[1], peerPort: members[0].clientPort }],
        }),
        id: '0',
        expected: ['members[1].peerPort', 'choose a free port'],
      },
      { file: configFile('unknown-id', {}), id: '7', expected: ['--id', 'no member 7', 'members: 0, 1, 2'] },
    ];
    // Two at a time: each is a node process loading TypeScript, on two shared cores.
    const outcomes = await inPairs([
      ...cases.map((c) => () => runMember(['--config', c.file, '--id', c.id])),
      () =>
        runMember([
          '--members',
          '0,127.0.0.1:9000|1,127.0.0.1:9002:9003',
          '--id',
          '0',
          '--dir',
          join(dir, 'compact'),
        ]),
    ]);
    // The compact members string names the entry at fault and shows the form it must take.
    const compact = outcomes.pop() as Outcome;
    expect(compact.code, compact.output).to.not.equal(0);
    expect(compact.output).to.include('members[0]');
    expect(compact.output).to.include('id,host:clientPort:peerPort');
    expect(existsSync(join(dir, 'compact')), 'data directory of the refused member').to.equal(false);
    outcomes.forEach((outcome, i) => {
      const { file, expected } = cases[i];
      expect(outcome.code, `exit code for ${file}: ${outcome.output}`).to.not.equal(0);
      expect(outcome.code, `exit code for ${file}: ${outcome.output}`).to.not.equal(null);
      for (const text of expected) expect(outcome.output, file).to.include(text);
      expect(outcome.output, 'a message, not a stack trace').to.not.match(/\n\s+at /);
      // Refused before start: no store was created.
      expect(existsSync(join(dir, `${file.slice(dir.length + 1, -'.json'.length)}-data`)), file).to.equal(
        false,
      );
    });
  });
});
