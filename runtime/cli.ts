#!/usr/bin/env node
// `npx chorus`: one command line for members, the cluster tool, the simulator and benchmarks.
// Each command loads its implementation only when it runs, so `--help` and small commands start fast.

import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { moduleExtension, packageRoot } from './build-kind.ts';
import type { FaultKind } from './sim/faults.ts';
import { toolCommandList } from './tool-commands.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Exit codes: 0 ok, 1 the command ran and found a failure, 2 bad usage or input. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const integer =
  (name: string, min = 0) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`${name} must be a whole number of at least ${min}, got "${value}"`);
    }
    return n;
  };

const members = (value: string): 3 | 5 => {
  if (value !== '3' && value !== '5')
    throw new InvalidArgumentError(`--members must be 3 or 5, got "${value}"`);
  return Number(value) as 3 | 5;
};

const fraction = (value: string): number => {
  const x = Number(value);
  if (!(x >= 0 && x <= 1))
    throw new InvalidArgumentError(`--intensity must be a number in [0, 1], got "${value}"`);
  return x;
};

/** Print a user-facing error (no stack trace for expected errors) and exit. */
const fail = (error: unknown, code = EXIT_USAGE): never => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`chorus: ${message}\n`);
  process.exit(code);
};

/** The benchmarks of this build (`.ts` in a checkout, `.js` in the package), less the shared modules. */
const benchmarkNames = (): string[] =>
  readdirSync(join(root, 'benchmarks'))
    .filter((f) => f.endsWith(moduleExtension) && !f.endsWith('.d.ts'))
    .map((f) => basename(f, moduleExtension))
    .filter((name) => name !== 'harness' && name !== 'run')
    .sort();

const buildProgram = (): Command => {
  const program = new Command()
    .name('chorus')
    .description(
      'Chorus: a Raft-replicated, event-sourced actor platform (statecharts on worker-thread shards).',
    )
    .version(
      (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version,
      '-V, --version',
      'print the version of Chorus',
    )
    .showHelpAfterError('(run `npx chorus --help` for the commands)')
    .showSuggestionAfterError(true)
    .exitOverride();

  const config = program.command('config').description('check a configuration, or print its schema');
  config
    .command('check')
    .description('validate a cluster configuration file and print the verdict')
    .argument('<file>', 'cluster configuration (JSON)')
    .action(async (file: string) => {
      const { loadClusterConfig, formatMembersString, ConfigError } = await import('./config.ts');
      try {
        const cfg = loadClusterConfig(file);
        // The services module is part of the configuration: load it now, as a member would at start.
        let hosted = 'the built-in KV service';
        if (cfg.services !== undefined) {
          const { loadServicesModule } = await import('./actor-runtime/services-module.ts');
          const loaded = await loadServicesModule(cfg.services);
          hosted = `services ${loaded.services.map((service) => service.name).join(', ')}`;
        }
        process.stdout.write(
          `${file}: valid — ${cfg.members.length} member${cfg.members.length === 1 ? '' : 's'} (${formatMembersString(cfg.members)}), ` +
            `heartbeat ${cfg.leaderHeartbeatIntervalMs}/${cfg.leaderHeartbeatTimeoutMs} ms, election timeout ${cfg.electionTimeoutMs} ms, ` +
            `${cfg.workerShards} worker shard${cfg.workerShards === 1 ? '' : 's'}, ${hosted}\n`,
        );
        if (cfg.members.length % 2 === 0) {
          process.stdout.write(
            `note: ${cfg.members.length} members tolerate no more failures than ${cfg.members.length - 1}; an odd count is usual\n`,
          );
        }
      } catch (error) {
        fail(error, error instanceof ConfigError ? EXIT_FAILURE : EXIT_USAGE);
      }
    });
  config
    .command('schema')
    .description('print the JSON Schema of a cluster configuration file (for editors)')
    .action(async () => {
      const { clusterConfigJsonSchema } = await import('./config.ts');
      process.stdout.write(`${JSON.stringify(clusterConfigJsonSchema(), null, 2)}\n`);
    });

  program
    .command('bench')
    .description('run a benchmark; prints one JSON object')
    .argument('<name>', 'the benchmark to run')
    .option('--json', 'print only the JSON object')
    .option('--clients <n>', 'concurrent clients, where the benchmark has clients', integer('--clients', 1))
    .option('--runs <n>', 'samples, where the benchmark takes samples (startup)', integer('--runs', 1))
    .action(async (name: string, options: { json?: boolean; clients?: number; runs?: number }) => {
      const names = benchmarkNames();
      if (!names.includes(name)) fail(`no benchmark "${name}"; available: ${names.join(', ')}`);
      const { runBenchmark } = await import('../benchmarks/run.ts');
      await runBenchmark(name, options);
    });

  program
    .command('member')
    .description('run one cluster member')
    .option('--config <file>', 'cluster configuration (JSON)')
    .option(
      '--members <list>',
      'instead of --config: the compact members string 0,host:clientPort:peerPort|...',
    )
    .requiredOption('--id <n>', "this member's id", integer('--id', 0))
    .option('--dir <dir>', 'data directory (overrides the configuration)')
    .option('--log-level <level>', 'pino log level (info, debug, ...)')
    .action(
      async (options: { config?: string; members?: string; id: number; dir?: string; logLevel?: string }) => {
        if (options.config === undefined && options.members === undefined)
          fail('member: give the cluster configuration with --config FILE (or --members LIST)');
        const { runMemberProcess } = await import('./member-process.ts');
        try {
          await runMemberProcess(options);
        } catch (error) {
          fail(error, EXIT_FAILURE);
        }
      },
    );

  program
    .command('tool')
    .description('the cluster tool, for the member in DIR')
    .argument('<dir>', "a member's directory (for example data/member-0)")
    .argument('<command>', 'one of the commands below')
    .option('--to <n>', 'transfer-leadership: the member to hand over to', integer('--to', 0))
    .option('--json', 'print the answer as one JSON object (describe always does)')
    .addHelpText('after', `\nCommands:\n${toolCommandList()}\n`)
    .action(async (dir: string, command: string, options: { to?: number; json?: boolean }) => {
      const { runTool, UnknownToolCommandError } = await import('./tool.ts');
      try {
        process.exitCode = await runTool(dir, command, options);
      } catch (error) {
        fail(error, error instanceof UnknownToolCommandError ? EXIT_USAGE : EXIT_FAILURE);
      }
    });

  program
    .command('cluster')
    .description('`cluster up`: a local multi-process cluster')
    .argument('<action>', 'up')
    .option('--members <n>', 'cluster size: 3 or 5 (without --config)', members, 3)
    .option('--dir <dir>', 'base directory, without --config', 'chorus-cluster')
    .option('--config <file>', 'run this cluster configuration (its ports, data directory, secrets)')
    .option('--services <module>', "the services module to run (overrides the configuration's)")
    .action(
      async (
        action: string,
        options: { members: 3 | 5; dir: string; config?: string; services?: string },
      ) => {
        if (action !== 'up') fail(`unknown cluster action "${action}"; use \`npx chorus cluster up\``);
        const { clusterUp } = await import('./cluster-up.ts');
        const { ConfigError } = await import('./config.ts');
        if (options.services !== undefined) {
          // Refused here, naming the flag, rather than by every member at start.
          const { loadServicesModule } = await import('./actor-runtime/services-module.ts');
          await loadServicesModule(options.services, '--services').catch((error: unknown) =>
            fail(error, EXIT_FAILURE),
          );
        }
        try {
          process.exitCode = await clusterUp(options);
        } catch (error) {
          fail(error, error instanceof ConfigError ? EXIT_FAILURE : EXIT_USAGE);
        }
      },
    );

  program
    .command('inspect')
    .description('the inspector: a live web page of the cluster')
    .option('--cluster <endpoints>', "the members' admin URLs: http://host:port,... (or ID=URL,...)")
    .option('--config <file>', 'a cluster configuration (members with an adminHttpPort)')
    .option('--port <p>', 'port on 127.0.0.1 (default: any free port)', integer('--port', 0), 0)
    .action(async (options: import('./inspector/inspect-command.ts').InspectCommandOptions) => {
      const { inspectCommand } = await import('./inspector/inspect-command.ts');
      try {
        process.exitCode = await inspectCommand(options);
      } catch (error) {
        fail(error, EXIT_USAGE);
      }
    });

  program
    .command('sim')
    .description('the deterministic simulator, with faults')
    .option('--seeds <n>', 'how many seeds to run (a sweep)', integer('--seeds', 1), 100)
    .option('--seed <s>', 'run (replay) this one seed', integer('--seed', 0))
    .option('--start-seed <s>', 'first seed of the sweep', integer('--start-seed', 0), 1)
    .option('--members <n>', 'cluster size: 3 or 5', members, 3)
    .option('--intensity <x>', 'fault intensity in [0, 1] (default: chosen by each seed)', fraction)
    .option(
      '--workload <w>',
      'kv (get, put, cas; linearizability), actors (counters and an order book; exactly once) or gateways (the gateway registry; never two live connections for a party) (default: kv on odd seeds, actors on even)',
    )
    .option(
      '--faults <kinds>',
      'draw only these fault kinds, comma-separated (default: every kind but lost-directory)',
    )
    .option('--json', 'print one JSON object')
    .action(
      async (options: {
        seeds: number;
        seed?: number;
        startSeed: number;
        members: 3 | 5;
        intensity?: number;
        workload?: string;
        faults?: string;
        json?: boolean;
      }) => {
        if (options.workload !== undefined && !['kv', 'actors', 'gateways'].includes(options.workload))
          fail(`--workload must be kv, actors or gateways, got "${options.workload}"`);
        const { runSweep, formatSweepReport } = await import('./sim/index.ts');
        const { FAULT_KINDS } = await import('./sim/faults.ts');
        const faultKinds = options.faults?.split(',').map((kind) => kind.trim());
        const unknown =
          faultKinds?.filter((kind) => !(FAULT_KINDS as readonly string[]).includes(kind)) ?? [];
        if (unknown.length > 0)
          fail(
            `--faults: no fault kind ${unknown.map((k) => `"${k}"`).join(', ')}; the kinds are ${FAULT_KINDS.join(', ')}`,
          );
        const single = options.seed !== undefined;
        const report = await runSweep({
          seeds: single ? 1 : options.seeds,
          startSeed: single ? options.seed : options.startSeed,
          members: options.members,
          intensity: options.intensity,
          workload: options.workload as 'kv' | 'actors' | 'gateways' | undefined,
          faultKinds: faultKinds as FaultKind[] | undefined,
          verbose: !options.json,
        });
        process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatSweepReport(report));
        process.exitCode = report.violations === 0 && report.linearizable ? 0 : EXIT_FAILURE;
      },
    );

  program
    .command('nemesis')
    .description('real members under seeded faults (root)')
    .option('--seed <s>', 'the schedule seed (printed; give it again to replay)', integer('--seed', 0))
    .option('--members <n>', 'cluster size: 3 or 5', members, 3)
    .option('--duration <s>', 'seconds of faults', integer('--duration', 1), 60)
    .option(
      '--faults <list>',
      'a family (partition, flap, crash, minority, pause, operator, all) or kinds',
      'all',
    )
    .option('--workload <w>', 'kv (get, put, cas) or actors (counters and an order book)', 'kv')
    .option('--snapshot-every <n>', 'snapshot.everyEntries of the members, or off', 'off')
    .option('--sessions <n>', 'client sessions', integer('--sessions', 1), 3)
    .option('--in-flight <n>', 'commands in flight per session', integer('--in-flight', 1), 4)
    .option(
      '--max-gap-ms <n>',
      'fail when a single-member fault leaves clients without a success this long',
      integer('--max-gap-ms', 1),
    )
    .option('--keep', 'keep the member directories even when the run passes')
    .option('--json', 'print one JSON object')
    .action(async (options: import('./nemesis/command.ts').NemesisCommandOptions) => {
      const { nemesisCommand } = await import('./nemesis/command.ts');
      process.exitCode = await nemesisCommand(options);
    });

  program
    .command('diagrams')
    .description('write or --check the diagrams (Mermaid, SVG)')
    .argument('[dir]', 'where the files are (default: docs/diagrams; with --module, ./diagrams)')
    .option('--out <dir>', 'the same as [dir]')
    .option('--format <format>', 'svg or mermaid (default: both)')
    .option('--module <file>', "a services module: draw its actor types' statecharts")
    .option('--check', 'list files that are missing or out of date, and exit 1 if any')
    .action(
      async (
        dir: string | undefined,
        options: { check?: boolean; out?: string; format?: string; module?: string },
      ) => {
        const { diagramsCommand } = await import('./diagrams.ts');
        const { out, ...rest } = options;
        const where = out ?? dir;
        process.exitCode = await diagramsCommand({ ...rest, ...(where === undefined ? {} : { dir: where }) });
      },
    );

  program
    .command('gateway')
    .description('a gateway, or plan / apply / explain its rules')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]', 'see `chorus gateway --help`')
    .action(async (args: string[]) => {
      const { runGatewayCli } = await import('../gateway/cli.ts');
      process.exitCode = await runGatewayCli(args);
    });

  program
    .command('demo')
    .description('the demo that `npm start` runs')
    .action(async () => {
      const { runDemo } = await import('./demo.ts');
      process.exitCode = await runDemo();
    });

  return program;
};

const main = async (argv: string[]): Promise<void> => {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    fail(error, EXIT_FAILURE);
  }
};

// A reader that stops early (`chorus tool DIR list-members | head -1`) closes the pipe: that is not an
// error of ours, so end quietly instead of dying on EPIPE with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

await main(process.argv);
