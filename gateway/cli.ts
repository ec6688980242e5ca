// `chorus gateway ...`: the gateway process, the remote-system stand-in, and the operator's commands on the
// balancing rules (plan, apply, explain, status). runtime/cli.ts hands every argument after `gateway` here.
// Exit codes as the rest of the CLI: 0 success; 1 the command ran and failed (a refusal, rules that do not
// check, no answer); 2 bad usage or input (a bad flag, a configuration that does not check, an unreadable file).

import { Command, CommanderError, InvalidArgumentError } from 'commander';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** An error whose exit code is known. */
export class GatewayCliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

const integer = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
  return n;
};

export interface ClusterFlags {
  readonly endpoints?: string;
  readonly credentials?: string;
  readonly credentialsFile?: string;
  readonly json?: boolean;
}

const clusterOptions = (command: Command): Command =>
  command
    .option(
      '--endpoints <list>',
      "the members' client endpoints, host:port,host:port,... (or CHORUS_ENDPOINTS)",
    )
    .option('--credentials <token>', 'the shared client token (or CHORUS_CREDENTIALS)')
    .option('--credentials-file <file>', 'a file holding it (chorus cluster up writes DIR/client-token)')
    .option('--json', 'print the answer as JSON');

const buildProgram = (exit: { code: number }): Command => {
  const program = new Command()
    .name('chorus gateway')
    .description(
      'run a gateway (--config FILE), the remote-system stand-in, or operate the balancing rules\n' +
        '(plan, apply, explain, status); docs/gateways.md explains them',
    )
    .option('--config <file>', "the gateway's configuration (JSON or YAML; examples/gateway.json)")
    .option('--log-level <level>', 'pino log level (info, debug, ...)', 'info')
    .showHelpAfterError('(run `npx chorus gateway --help` for the commands)')
    .exitOverride()
    .action(async (options: { config?: string; logLevel: string }) => {
      if (!options.config)
        throw new GatewayCliError(
          'give --config FILE to run a gateway, or a command (see --help)',
          EXIT_USAGE,
        );
      const { runGatewayProcess } = await import('./process.ts');
      exit.code = await runGatewayProcess(options.config, options.logLevel);
    });

  program
    .command('stand-in')
    .description('the remote system: a TCP server recording each party connection, flagging two live ones')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one)', integer('--port'), 0)
    .option('--liveness-ms <n>', 'end a connection silent this long (0: never)', integer('--liveness-ms'))
    .option('--json', 'one JSON line per event')
    .action(async (options: { host: string; port: number; livenessMs?: number; json?: boolean }) => {
      const { runStandIn } = await import('./operator.ts');
      exit.code = await runStandIn(options);
    });

  clusterOptions(program.command('plan'))
    .description(
      'dry run: the moves RULES would make now (from → to) and the budget they use; nothing applied',
    )
    .argument('<rules>', 'the rules file (YAML or JSON)')
    .action(async (rules: string, flags: ClusterFlags) => {
      const { runOperatorCommand } = await import('./operator.ts');
      exit.code = await runOperatorCommand({ kind: 'plan', rules }, flags);
    });

  clusterOptions(program.command('apply'))
    .description('commit RULES through the log (versioned)')
    .argument('<rules>', 'the rules file (YAML or JSON)')
    .option('--if-version <n>', 'refuse unless the rules in force are this version', integer('--if-version'))
    .action(async (rules: string, flags: ClusterFlags & { ifVersion?: number }) => {
      const { runOperatorCommand } = await import('./operator.ts');
      exit.code = await runOperatorCommand({ kind: 'apply', rules, ifVersion: flags.ifVersion }, flags);
    });

  clusterOptions(program.command('explain'))
    .description("per gateway, each filter's verdict and each score's contribution for PARTY")
    .argument('<party>', 'the party id')
    .action(async (party: string, flags: ClusterFlags) => {
      const { runOperatorCommand } = await import('./operator.ts');
      exit.code = await runOperatorCommand({ kind: 'explain', party }, flags);
    });

  clusterOptions(program.command('status'))
    .description('gateways, parties, owners, epochs and the rules version')
    .action(async (flags: ClusterFlags) => {
      const { runOperatorCommand } = await import('./operator.ts');
      exit.code = await runOperatorCommand({ kind: 'status' }, flags);
    });
  return program;
};

/** Run `chorus gateway ARGS`; resolves with the exit code. */
export const runGatewayCli = async (args: readonly string[]): Promise<number> => {
  const exit = { code: 0 };
  const program = buildProgram(exit);
  try {
    await program.parseAsync(['node', 'chorus-gateway', ...args]);
    return exit.code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    const code = error instanceof GatewayCliError ? error.exitCode : EXIT_FAILURE;
    process.stderr.write(`chorus gateway: ${error instanceof Error ? error.message : String(error)}\n`);
    return code;
  }
};
