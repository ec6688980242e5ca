import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { TEST_SECRET } from '../security/peers.ts';

const chorus = (...args: string[]) => {
  const result = spawnSync(process.execPath, ['bin/chorus.js', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, out: result.stdout, err: result.stderr };
};

describe('the chorus command', () => {
  it('lists every command with one line each', () => {
    const { code, out } = chorus('--help');
    expect(code).to.equal(0);
    const commands = out
      .slice(out.indexOf('Commands:'))
      .split('\n')
      .slice(1)
      .filter((line) => line.trim() !== '');
    const names = commands.map((line) => line.trim().split(/\s+/)[0]);
    expect(names).to.include.members([
      'config',
      'bench',
      'member',
      'tool',
      'cluster',
      'sim',
      'diagrams',
      'demo',
    ]);
    // One line each: a wrapped description would add a continuation line indented past the names.
    for (const line of commands) expect(line, line).to.match(/^ {2}[a-z]/);
  });

  it('ends quietly when its reader closes the pipe early (`| head -1`): exit 0, no EPIPE trace', async () => {
    const child = spawn(process.execPath, ['bin/chorus.js', 'config', 'schema'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString('utf8');
    });
    child.stdout.destroy(); // the reader is gone before the first line is written
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(err).to.equal('');
    expect(code).to.equal(0);
  });

  it('diagrams --check says the pages are up to date (exit 0), or lists the missing ones and the command that rewrites them (exit 1)', function () {
    // Three processes; the Mermaid pages only (the SVG layout has its own spec, spec/inspector/diagrams.spec.ts).
    this.timeout(90_000);
    const dir = mkdtempSync(join(tmpdir(), 'chorus-diagrams-'));
    const wrote = chorus('diagrams', dir, '--format', 'mermaid');
    expect(wrote.code).to.equal(0);
    const pages = wrote.out.trim().split('\n');
    expect(pages.length).to.be.above(3);
    const fresh = chorus('diagrams', '--check', dir, '--format', 'mermaid');
    expect(fresh.code).to.equal(0);
    expect(fresh.out).to.equal(`${pages.length} diagram pages in ${dir} are up to date\n`);
    const page = pages[0].replace(/^wrote /, '');
    rmSync(page);
    const stale = chorus('diagrams', '--check', dir, '--format', 'mermaid');
    expect(stale.code).to.equal(1);
    expect(stale.out).to.equal(
      `missing: ${page}\nregenerate with: npx chorus diagrams ${dir} --format mermaid\n`,
    );
  });

  it('cluster --help shows each default once, and the --config and --services options', () => {
    const { code, out } = chorus('cluster', '--help');
    expect(code).to.equal(0);
    expect(out.match(/chorus-cluster/g), out).to.have.length(1);
    expect(out).to.include('--config <file>');
    expect(out).to.include('--services <module>');
  });

  it('cluster up refuses a --services module that does not load before starting anything, naming the flag', () => {
    const { code, err } = chorus('cluster', 'up', '--services', './no-such-services.ts');
    expect(code).to.equal(1);
    expect(err).to.match(
      /--services: cannot load .*no-such-services\.ts: no such module; .*relative to the working directory/,
    );
  });

  it('--version prints the package version', () => {
    const { code, out } = chorus('--version');
    expect(code).to.equal(0);
    expect(out).to.equal(`${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
  });

  it('member without a configuration is a usage error (exit 2) naming both ways to give one', () => {
    const { code, err } = chorus('member', '--id', '0');
    expect(code).to.equal(2);
    expect(err).to.equal(
      'chorus: member: give the cluster configuration with --config FILE (or --members LIST)\n',
    );
  });

  it('refuses an unknown command with a clear message and a non-zero exit', () => {
    const { code, err } = chorus('frobnicate');
    expect(code).to.equal(2);
    expect(err).to.include("unknown command 'frobnicate'");
  });

  it('refuses a bad flag with a clear message and a non-zero exit', () => {
    const { code, err } = chorus('bench', 'codec', '--clients', 'many');
    expect(code).to.equal(2);
    expect(err).to.include('--clients must be a whole number');
  });

  it('refuses an unknown benchmark, listing the ones that exist', () => {
    const { code, err } = chorus('bench', 'nope');
    expect(code).to.equal(2);
    expect(err).to.match(/no benchmark "nope"; available: .*codec/);
  });

  it('O1: config check prints the verdict, naming the field and the fix when refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-cli-'));
    const good = join(dir, 'good.json');
    const bad = join(dir, 'bad.json');
    writeFileSync(
      good,
      JSON.stringify({
        members: '0,127.0.0.1:9000:9100|1,127.0.0.1:9001:9101|2,127.0.0.1:9002:9102',
        peerAuthentication: { secrets: [TEST_SECRET] },
      }),
    );
    writeFileSync(bad, JSON.stringify({ members: '0,127.0.0.1:9000:9100|1,127.0.0.1:9000:9101' }));
    const ok = chorus('config', 'check', good);
    expect(ok.code).to.equal(0);
    expect(ok.out).to.include('valid — 3 members');
    const refused = chorus('config', 'check', bad);
    expect(refused.code).to.equal(1);
    expect(refused.err).to.include(
      'members[1].clientPort: port 9000 on 127.0.0.1 is already taken by members[0].clientPort',
    );
  });

  it('O1: config check loads the services module a configuration names, and refuses one that does not load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-cli-'));
    const members = '0,127.0.0.1:9000:9100|1,127.0.0.1:9001:9101|2,127.0.0.1:9002:9102';
    const good = join(dir, 'good.json');
    const bad = join(dir, 'bad.json');
    writeFileSync(
      good,
      JSON.stringify({
        members,
        peerAuthentication: { secrets: [TEST_SECRET] },
        services: join(process.cwd(), 'examples', 'counter-service.ts'),
      }),
    );
    writeFileSync(
      bad,
      JSON.stringify({
        members,
        peerAuthentication: { secrets: [TEST_SECRET] },
        services: './no-such-services.ts',
      }),
    );
    const ok = chorus('config', 'check', good);
    expect(ok.code, ok.err).to.equal(0);
    expect(ok.out).to.match(/services counters?/);
    const refused = chorus('config', 'check', bad);
    expect(refused.code).to.equal(1);
    expect(refused.err).to.match(/services: cannot load .*no-such-services\.ts/);
  });

  it('config schema prints a JSON Schema', () => {
    const { code, out } = chorus('config', 'schema');
    expect(code).to.equal(0);
    expect(JSON.parse(out).properties).to.have.property('leaderHeartbeatTimeoutMs');
  });
});
