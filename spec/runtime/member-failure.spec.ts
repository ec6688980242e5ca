// A storage refusal stops a member through its one failure path: a FATAL record naming what failed and
// why, and exit code 70 (docs/runbook.md). Never an uncaught exception (issue 10 §3, issue 11: the
// node-state store used to throw inside Member.execute, and the member died with a stack trace).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { freePorts } from '../support/ports.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'member-refusing-a-term.ts');

/** How long the child may take to stop, at most: it stops by itself well within this, even on a loaded machine. */
const EXIT_WITHIN_MS = 20_000;

/** Run the fixture; its exit code (null if it had to be killed after EXIT_WITHIN_MS) and output. */
const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });

/** Expect the fixture to have stopped through the failure path on the refused term. */
const expectRefusedTermFailure = ({ code, stdout, stderr }: Awaited<ReturnType<typeof run>>) => {
  const records = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string });
  const fatal = records.filter((r) => r.level >= 60).map((r) => r.msg);
  expect(fatal, `stderr: ${stderr}`).to.have.length(1);
  expect(fatal[0]).to.match(
    /^member stopped: node state save failed: INVALID_ARGUMENT: nodeState\.save: currentTerm 9007199254740991 is above 9007199254740990/,
  );
  expect(stderr, 'nothing thrown past the member').to.not.match(/Error|Uncaught/);
  expect(code, 'exit code (null: still running, killed)').to.equal(70);
};

describe('member: a storage refusal goes through the failure path', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-member-failure-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a term the node-state store refuses stops the member with FATAL and exit code 70, not an uncaught exception', async () => {
    const ports = await freePorts(6);
    expectRefusedTermFailure(await run([dir, JSON.stringify(ports)]));
  });

  it('the failure path does not wait for a service that never finishes applying', async () => {
    const ports = await freePorts(6);
    expectRefusedTermFailure(await run([dir, JSON.stringify(ports), 'busy']));
  });
});
