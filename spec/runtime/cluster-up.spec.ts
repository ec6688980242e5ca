// `npx chorus cluster up --config FILE --services MODULE`, as a user runs it: a real process started from
// another working directory, on the configuration's fixed ports, its data directory relative to the
// configuration file, the services module from the flag; what it prints is what a client then uses.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type BankReply, bankService } from '../../examples/bank-service.ts';
import { serviceClient } from '../../runtime/actor-runtime/service-client.ts';
import { ChorusClient } from '../../runtime/client/client.ts';
import { formatMembersString } from '../../runtime/config.ts';
import { freePorts } from '../../runtime/local-cluster.ts';
import { TEST_SECRET } from '../security/peers.ts';
import { eventually } from '../support/ports.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BANK = join(ROOT, 'examples', 'bank-service.ts');

describe('chorus cluster up', function () {
  this.timeout(60_000);
  let child: ChildProcess | null = null;
  const made: string[] = [];

  after(async () => {
    // SIGTERM, never SIGKILL: `cluster up` stops its members on the way out; killed, it would orphan them.
    const running = child;
    if (running !== null && running.exitCode === null && running.signalCode === null) {
      const gone = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGTERM');
      await gone;
    }
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  it('runs a configuration file on its ports, data directory relative to the file, services from --services', async () => {
    const home = mkdtempSync(join(tmpdir(), 'chorus-up-'));
    made.push(home);
    const confDir = join(home, 'conf');
    const cwd = join(home, 'elsewhere');
    mkdirSync(confDir);
    mkdirSync(cwd);
    const ports = await freePorts(6);
    const members = [0, 1, 2].map((id) => ({
      id,
      host: '127.0.0.1',
      clientPort: ports[id],
      peerPort: ports[3 + id],
    }));
    const file = join(confDir, 'cluster.json');
    writeFileSync(
      file,
      JSON.stringify({
        members: formatMembersString(members),
        dir: './state',
        peerAuthentication: { secrets: [TEST_SECRET] },
      }),
    );

    // --services relative to the working directory (a flag), --config to the file itself.
    child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin', 'chorus.js'),
        'cluster',
        'up',
        '--config',
        relative(cwd, file),
        '--services',
        relative(cwd, BANK),
      ],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));

    await eventually(async () => /member \d leads/.test(out), `a leader in the output:\n${out}`, 45_000, 100);
    const line = (label: string) => out.match(new RegExp(`^ {2}${label}: (.*)$`, 'm'))?.[1];
    const endpoints = members.map((m) => `127.0.0.1:${m.clientPort}`);
    expect(line('client endpoints')).to.equal(endpoints.join(','));
    expect(line('data directory')).to.equal(join(confDir, 'state'));
    expect(line('services')).to.equal(BANK);
    expect(line('configuration')).to.equal(file);
    for (const m of members) {
      expect(out).to.include(
        `member ${m.id}: client 127.0.0.1:${m.clientPort}, peers 127.0.0.1:${m.peerPort}`,
      );
    }

    // The printed endpoints reach the service the flag named.
    const client = await ChorusClient.connect({ endpoints, commandTimeoutMs: 15_000 });
    try {
      const bank = serviceClient(client, bankService);
      const reply = (await bank.command({ type: 'DEPOSIT', account: 'a', amount: 7 })) as BankReply;
      expect(reply).to.deep.equal({ ok: true, state: 'OPEN', balance: 7 });
    } finally {
      await client.close();
    }

    // The cluster tool on these members, as the printed commands run it.
    const tool = (id: number, ...args: string[]) => {
      const run = spawnSync(
        process.execPath,
        [join(ROOT, 'bin', 'chorus.js'), 'tool', join(confDir, 'state', `member-${id}`), ...args],
        { cwd, encoding: 'utf8', timeout: 30_000 },
      );
      return { code: run.status, out: run.stdout, err: run.stderr };
    };
    const leader = members.find((m) => tool(m.id, 'is-leader').code === 0)?.id as number;
    const listed = tool(leader, 'list-members');
    expect(listed.code).to.equal(0);
    expect(listed.out.split('\n')[0]).to.match(new RegExp(`^member ${leader}: LEADER, `));
    const described = JSON.parse(tool(leader, 'describe').out) as Record<string, unknown>;
    expect(described).to.include({ memberId: leader, role: 'LEADER' });
    expect(described, 'no field that is always empty').not.to.have.property('terms');
    const missing = tool(leader, 'transfer-leadership', '--to', '99');
    expect(missing.code).to.equal(1);
    expect(missing.err).to.equal('chorus: no member 99 (members: 0, 1, 2)\n');
    const target = (leader + 1) % members.length;
    const moved = tool(leader, 'transfer-leadership', '--to', String(target), '--json');
    expect(moved.code, moved.err).to.equal(0);
    const answer = JSON.parse(moved.out) as { from: number; to: number; leaderId: number; term: number };
    expect(answer).to.deep.include({ from: leader, to: target, leaderId: target });
    expect(answer.term).to.be.above(Number(described.term));
    const back = tool(target, 'transfer-leadership', '--to', String(leader));
    expect(back.code, back.err).to.equal(0);
    expect(back.out).to.match(
      new RegExp(`^member ${leader} leads \\(term \\d+\\), taken over from member ${target}\\n$`),
    );

    child.kill('SIGINT');
    expect(await exited, `exit code; output:\n${out}`).to.equal(0);
    expect(out).to.include('stopping the cluster');
    for (const m of members)
      expect(existsSync(join(confDir, 'state', `member-${m.id}`)), `member ${m.id} data`).to.equal(true);
    expect(existsSync(join(cwd, 'state')), 'nothing written relative to the working directory').to.equal(
      false,
    );
    expect(existsSync(join(cwd, 'chorus-cluster'))).to.equal(false);
  });
});
