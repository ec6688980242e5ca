// `chorus tool DIR COMMAND` as an operator runs it, against a real single-member cluster: each command's
// human line and its --json object, the exit codes, an unknown command (a usage error listing the commands)
// and a cluster's directory given instead of a member's.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { LocalCluster } from '../../runtime/local-cluster.ts';
import { TOOL_COMMANDS } from '../../runtime/tool-commands.ts';
import { eventually } from '../support/ports.ts';

const chorus = (...args: string[]) => {
  const result = spawnSync(process.execPath, ['bin/chorus.js', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
};

describe('chorus tool, human and --json', function () {
  // One member process (tsx compiling on a loaded 2-core machine) and a handful of tool processes.
  this.timeout(120_000);
  let cluster: LocalCluster;
  let dir = '';
  const tool = (...args: string[]) => chorus('tool', dir, ...args);

  before(async () => {
    cluster = await LocalCluster.start({ members: 1 });
    await cluster.waitForLeader(60_000);
    dir = cluster.memberDir(0);
    // The leader's term entry applied: there is something to snapshot.
    await eventually(
      () => JSON.parse(tool('describe').out).appliedIndex >= 1,
      'the term entry applied',
      30_000,
    );
  });

  after(() => cluster?.close());

  it('tool --help lists every command with what it does', () => {
    const { code, out } = chorus('tool', '--help');
    expect(code).to.equal(0);
    for (const [name, what] of Object.entries(TOOL_COMMANDS))
      expect(out).to.contain(`  ${name.padEnd(21)}${what}`);
  });

  it('list-members: a status line and a table; --json the same as one object', () => {
    const human = tool('list-members');
    expect(human.code, human.err).to.equal(0);
    const [status, header, row] = human.out.split('\n');
    expect(status).to.match(/^member 0: LEADER, CLOSED, module ACTIVE, term \d+, commit \d+, applied \d+$/);
    expect(header).to.equal('id  client                 peer                   seen from here');
    const self = cluster.config.members[0];
    expect(row).to.match(
      new RegExp(
        `^0   127\\.0\\.0\\.1:${self.clientPort} +127\\.0\\.0\\.1:${self.peerPort} +leader, this member$`,
      ),
    );
    const json = tool('list-members', '--json');
    expect(json.code, json.err).to.equal(0);
    const answer = JSON.parse(json.out);
    expect(answer).to.deep.include({ memberId: 0, role: 'LEADER', moduleState: 'ACTIVE', leaderId: 0 });
    expect(answer.members).to.deep.equal([
      {
        id: 0,
        client: `127.0.0.1:${self.clientPort}`,
        peer: `127.0.0.1:${self.peerPort}`,
        leader: true,
        self: true,
        connected: false,
      },
    ]);
  });

  it('is-leader: exit 0 on the leader, a line or an object', () => {
    const human = tool('is-leader');
    expect(human.code).to.equal(0);
    expect(human.out).to.match(/^member 0 is the leader \(term \d+\)\n$/);
    const json = tool('is-leader', '--json');
    expect(json.code).to.equal(0);
    expect(JSON.parse(json.out)).to.deep.include({ memberId: 0, leader: true, role: 'LEADER', leaderId: 0 });
  });

  it('snapshot: says where it was taken, or why none was; --json the member answer', () => {
    const taken = tool('snapshot');
    expect(taken.code, taken.err).to.equal(0);
    expect(taken.out).to.match(
      new RegExp(`^snapshot taken at index \\d+ \\(${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)\n$`),
    );
    const again = tool('snapshot');
    expect(again.out).to.match(
      /^no snapshot taken: nothing applied since the last snapshot; the last is at index \d+\n$/,
    );
    const json = tool('snapshot', '--json');
    expect(JSON.parse(json.out)).to.deep.include({
      taken: false,
      reason: 'nothing applied since the last snapshot',
    });
  });

  it('suspend and resume: what each did, and how to undo a suspend', () => {
    const suspended = tool('suspend');
    expect(suspended.code, suspended.err).to.equal(0);
    expect(suspended.out).to.equal(
      `suspended (module SUSPENDED): client input is answered BUSY until \`npx chorus tool ${dir} resume\`\n`,
    );
    const resumed = tool('resume', '--json');
    expect(resumed.code, resumed.err).to.equal(0);
    expect(JSON.parse(resumed.out)).to.deep.equal({ moduleState: 'ACTIVE' });
    expect(tool('suspend', '--json').out).to.equal('{"moduleState":"SUSPENDED"}\n');
    expect(tool('resume').out).to.equal('resumed (module ACTIVE): taking client input\n');
  });

  it('an unknown command is a usage error (exit 2) that lists the commands', () => {
    const { code, out, err } = tool('status');
    expect(code).to.equal(2);
    expect(out).to.equal('');
    expect(err).to.contain('chorus: unknown tool command "status"; the commands:\n');
    expect(err).to.contain('  describe ');
  });

  it("a cluster's directory instead of a member's: names a member's directory to use", () => {
    const base = join(cluster.memberDir(0), '..', '..');
    const { code, err } = chorus('tool', base, 'list-members');
    expect(code).to.equal(1);
    expect(err).to.equal(
      `chorus: ${base} holds a cluster's members, not one member: name a member's directory, e.g. ${join(base, 'data', 'member-0')}\n`,
    );
  });
});
