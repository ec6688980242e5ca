// Secure defaults: a member's data is readable only by its user, a member open to every client on a
// non-loopback address says so loudly, and `chorus cluster up` writes a configuration with client
// authentication on and the secrets in files only the user can read.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import pino from 'pino';
import { validateClusterConfig } from '../../runtime/config.ts';
import { Member } from '../../runtime/member.ts';
import { eventually, freePorts } from '../support/ports.ts';

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);
const CHORUS_BIN = fileURLToPath(new URL('../../bin/chorus.js', import.meta.url));

describe('security: defaults', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-security-'));
    dirs.push(dir);
    return dir;
  };

  it('a member keeps its data 0700 and its files 0600, and warns when it takes every client on a non-loopback address', async () => {
    const dir = tempDir();
    const [clientPort, peerPort] = await freePorts(2);
    const config = validateClusterConfig({
      members: [{ id: 0, host: '0.0.0.0', clientPort, peerPort }],
      dir: join(dir, 'data'),
    });
    const records: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) records.push(JSON.parse(line));
        done();
      },
    });
    const member = await Member.start({ config, memberId: 0, logger: pino({ level: 'info' }, sink) });
    try {
      await eventually(() => records.some((r) => r.msg.startsWith('UNAUTHENTICATED CLIENTS')), 'the warning');
      const warning = records.find((r) => r.msg.startsWith('UNAUTHENTICATED CLIENTS'));
      expect(warning?.level, 'logged at warn').to.equal(40);
      expect(warning?.msg).to.include('set "authentication" to shared-token or challenge-response');
      expect(mode(join(dir, 'data'))).to.equal('700');
      expect(mode(join(dir, 'data', 'member-0'))).to.equal('700');
      expect(mode(join(dir, 'data', 'member-0', 'data.mdb'))).to.equal('600');
      expect(mode(join(dir, 'data', 'member-0', 'lock.mdb'))).to.equal('600');
    } finally {
      await member.stop();
    }
  });

  it('`chorus cluster up` turns client authentication on and keeps the token and peer secret in 0600 files', async () => {
    const dir = join(tempDir(), 'up');
    const child = spawn(process.execPath, [CHORUS_BIN, 'cluster', 'up', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CHORUS_LOG_LEVEL: 'warn' },
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += String(chunk);
    });
    child.stderr.on('data', (chunk) => {
      output += String(chunk);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await eventually(() => /member \d leads/.test(output), 'a leader', 45_000, 50);
      expect(output).to.include(
        `client token (clients send it as credentials): ${join(dir, 'client-token')}`,
      );
      expect(output).to.include(
        `peer secret (members prove they hold it to each other): ${join(dir, 'peer-secret')}`,
      );
      const config = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8'));
      const token = readFileSync(join(dir, 'client-token'), 'utf8').trim();
      expect(config.authentication).to.deep.equal({ kind: 'shared-token', token });
      expect(config.peerAuthentication).to.deep.equal({ secretFile: join(dir, 'peer-secret') });
      for (const file of ['cluster.json', 'client-token', 'peer-secret'])
        expect(mode(join(dir, file)), file).to.equal('600');
      expect(mode(dir)).to.equal('700');
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });
});
