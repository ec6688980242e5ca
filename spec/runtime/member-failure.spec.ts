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
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });

describe('member: a storage refusal goes through the failure path', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-member-failure-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a term the node-state store refuses stops the member with FATAL and exit code 70, not an uncaught exception', async () => {
    const ports = await freePorts(6);
    const { code, stdout, stderr } = await run([dir, JSON.stringify(ports)]);
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
    expect(code, 'exit code').to.equal(70);
  });
});
