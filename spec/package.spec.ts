// The npm package as a user gets it: built as `npm run build` does (scripts/build.mjs), packed with
// `npm pack` (the package's `files`, `bin`, `main`, `types` and `exports`), installed from the tarball into
// an empty directory (its dependencies from the registry), then used with nothing else: the `chorus`
// command, a 3-member cluster
// and a client from plain JavaScript, and a service of the user's own written in TypeScript, compiled
// against the package's declarations with TypeScript alone and run on worker shards. No tsx is installed.
// Skipped, with the reason, only when the npm registry cannot be reached.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = fileURLToPath(new URL('..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Run a command to its end; throws with its output when it fails. */
const run = (command: string, args: readonly string[], cwd: string, timeout = 240_000): string => {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout });
  if (result.status !== 0) {
    throw new Error(
      `\`${command} ${args.join(' ')}\` (in ${cwd}) exited ${result.status ?? result.signal}:\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
};

const registryUnreachable = (): string | null => {
  const ping = spawnSync(NPM, ['ping'], { encoding: 'utf8', timeout: 20_000 });
  return ping.status === 0
    ? null
    : `the npm registry does not answer (npm ping: ${ping.stderr.trim() || ping.error})`;
};

// A plain-JavaScript user: the key-value service every member hosts by default, on three members (msgpackr,
// a dependency of the package, decodes its replies).
const JS_APP = `
import { ChorusClient, LocalCluster, encodeKvCommand } from 'chorus';
import { unpack } from 'msgpackr';

const cluster = await LocalCluster.start({ members: 3 });
try {
  await cluster.waitForLeader(60_000);
  const client = await ChorusClient.connect({ endpoints: cluster.endpoints(), commandTimeoutMs: 30_000 });
  await client.send(encodeKvCommand({ op: 'put', key: 'greeting', value: 'hello' }));
  const read = unpack(await client.send(encodeKvCommand({ op: 'get', key: 'greeting' })));
  await client.close();
  console.log(JSON.stringify({ read }));
} finally {
  await cluster.close();
}
`;

// A TypeScript user: a service of their own (an actor per tally), typed commands, a typed client.
const TS_SERVICE = `
import { defineService, reply } from 'chorus';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';

type TallyEvent = { type: 'ADD'; by: number };

const tally = setup({ types: { context: {} as { total: number }, events: {} as TallyEvent } }).createMachine({
  context: { total: 0 },
  on: {
    ADD: {
      actions: [
        assign({ total: ({ context, event }) => context.total + event.by }),
        emit(({ context }) => reply(context.total)),
      ],
    },
  },
});

export const tallyService = defineService({
  name: 'tallies',
  actors: { tally },
  commands: { ADD: z.object({ type: z.literal('ADD'), id: z.string(), by: z.number().int() }) },
  route: ({ id, ...event }) => ({ actorType: 'tally', actorId: id, event: event as TallyEvent }),
});

export const services = [tallyService];
`;

const TS_APP = `
import { fileURLToPath } from 'node:url';
import { ChorusClient, LocalCluster, serviceClient } from 'chorus';
import { tallyService } from './service.js';

const services: string = fileURLToPath(new URL('./service.js', import.meta.url));
// The declarations are real types, not \`any\`: a wrong command does not compile.
// @ts-expect-error: 'SUBTRACT' is not a command of the tally service
void (() => serviceClient({} as ChorusClient, tallyService).command({ type: 'SUBTRACT', id: 'a', by: 1 }));
const cluster = await LocalCluster.start({ members: 1, overrides: { services, workerShards: 2 } });
try {
  await cluster.waitForLeader(60_000);
  const client = await ChorusClient.connect({ endpoints: cluster.endpoints(), commandTimeoutMs: 30_000 });
  const tallies = serviceClient(client, tallyService);
  await tallies.command({ type: 'ADD', id: 'a', by: 2 });
  const total = await tallies.command({ type: 'ADD', id: 'a', by: 3 });
  await client.close();
  console.log(JSON.stringify({ total }));
} finally {
  await cluster.close();
}
`;

const TS_CONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: true,
    types: ['node'],
  },
  include: ['*.ts'],
};

describe('the npm package, packed and installed from its tarball', function () {
  // Building, packing and installing from the registry; members start from the installed JavaScript.
  this.timeout(480_000);
  let work = '';
  let app = '';

  before(function () {
    const unreachable = registryUnreachable();
    if (unreachable !== null) {
      process.stderr.write(`npm package spec skipped: ${unreachable}\n`);
      this.skip();
    }
    work = mkdtempSync(join(tmpdir(), 'chorus-package-'));
    // Stage the package as `npm pack` would see it after prepack, without touching the checkout's dist/.
    const stage = join(work, 'stage');
    mkdirSync(join(stage, 'bin'), { recursive: true });
    for (const file of ['package.json', 'README.md', 'bin/chorus.js']) {
      copyFileSync(join(root, file), join(stage, file));
    }
    run(process.execPath, [join(root, 'scripts', 'build.mjs'), join(stage, 'dist')], root);
    const packed = JSON.parse(
      run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], stage),
    ) as { filename: string }[];
    const tarball = join(work, packed[0].filename);
    app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run(
      NPM,
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        tarball,
        `typescript@${manifest.devDependencies.typescript}`,
        `@types/node@${manifest.devDependencies['@types/node']}`,
      ],
      app,
    );
  });

  after(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('ships JavaScript and declarations only, and installs without tsx', () => {
    const installed = join(app, 'node_modules', 'chorus');
    expect(existsSync(join(installed, 'dist', 'index.js'))).to.equal(true);
    expect(existsSync(join(installed, 'dist', 'index.d.ts'))).to.equal(true);
    expect(existsSync(join(installed, 'dist', 'runtime', 'actor-runtime', 'shard-worker.js'))).to.equal(true);
    // The inspector's page (scripts/build.mjs copies it: tsc emits no HTML or CSS) and its diagrams' layout worker.
    expect(existsSync(join(installed, 'dist', 'runtime', 'inspector', 'page', 'index.html'))).to.equal(true);
    expect(
      existsSync(join(installed, 'dist', 'runtime', 'inspector', 'diagrams', 'layout-worker.js')),
    ).to.equal(true);
    expect(existsSync(join(installed, 'index.ts'))).to.equal(false);
    expect(existsSync(join(installed, 'runtime'))).to.equal(false);
    expect(existsSync(join(app, 'node_modules', 'tsx'))).to.equal(false);
  });

  it('runs the chorus command from the installed package', () => {
    const help = run(join(app, 'node_modules', '.bin', 'chorus'), ['--help'], app, 60_000);
    expect(help).to.match(/^Usage: chorus/);
    const version = run(join(app, 'node_modules', '.bin', 'chorus'), ['--version'], app, 60_000);
    expect(version).to.equal(`${manifest.version}\n`);
    const config = join(app, 'cluster.json');
    writeFileSync(config, JSON.stringify({ members: '0,127.0.0.1:9101:9102' }));
    const check = run(join(app, 'node_modules', '.bin', 'chorus'), ['config', 'check', config], app, 60_000);
    expect(check).to.contain('valid — 1 member');
    // The statecharts laid out by elkjs on the package's layout worker.
    const out = join(app, 'diagrams');
    run(
      join(app, 'node_modules', '.bin', 'chorus'),
      ['diagrams', '--format', 'svg', '--out', out],
      app,
      60_000,
    );
    expect(readFileSync(join(out, 'election.svg'), 'utf8')).to.contain('data-state="BALLOT.CANVASS"');
  });

  it('exports chorus/testkit', () => {
    const out = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const t = await import('chorus/testkit'); console.log(typeof t.createModel)",
      ],
      app,
      60_000,
    );
    expect(out).to.equal('function\n');
  });

  it('starts a 3-member cluster and a client from plain JavaScript', () => {
    writeFileSync(join(app, 'kv.mjs'), JS_APP);
    const out = run(process.execPath, ['kv.mjs'], app);
    expect(JSON.parse(out.trim().split('\n').at(-1) ?? '')).to.deep.equal({
      read: { value: 'hello' },
    });
  });

  it("compiles a TypeScript service and client against the package's declarations (a wrong command refused), and runs them on worker shards", () => {
    writeFileSync(join(app, 'service.ts'), TS_SERVICE);
    writeFileSync(join(app, 'app.ts'), TS_APP);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TS_CONFIG));
    run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', '.'], app);
    const out = run(process.execPath, ['app.js'], app);
    expect(JSON.parse(out.trim().split('\n').at(-1) ?? '')).to.deep.equal({ total: 5 });
  });
});
