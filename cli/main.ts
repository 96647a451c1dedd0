import { Command, CommanderError, Option } from 'commander';
import { CONFIG_VARIABLES, loadEnvFile, type EnvFileRead } from '../src/config.js';
import { approveCommand } from './approve.command.js';
import { approvalsCommand } from './approvals.command.js';
import { auditCommand } from './audit.command.js';
import { dbCommand } from './db.command.js';
import { safeText } from './format.js';
import { keysCommand } from './keys.command.js';
import { mcpCommand } from './mcp.command.js';
import { notifyCommand } from './notify.command.js';
import { policyCommand } from './policy.command.js';
import { receiptCommand } from './receipt.command.js';
import { usersCommand } from './users.command.js';
import { sessionsCommand } from './sessions.command.js';

/** Builds the `toolgate` program. Subcommands register themselves from their own files. */
export function buildProgram(): Command {
  const program = new Command('toolgate')
    .description('toolgate — a human-approval gateway for AI-agent tool calls')
    .version('0.1.0')
    .addOption(new Option('--server <url>', 'gateway URL (default $TOOLGATE_URL or http://127.0.0.1:8020)'))
    .addOption(new Option('--token <token>', 'API token (default $TOOLGATE_TOKEN; visible in `ps`, prefer the variable)'))
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError();

  program
    .command('serve')
    .description('start the gateway (configured by environment variables)')
    .addHelpText(
      'after',
      [
        '',
        'Environment (see README.md, Configuration; .env in the working directory is read, real variables win):',
        ...wrap(CONFIG_VARIABLES),
        '',
        'On the first start the seeded tokens are printed on a terminal, or written to',
        'first-run-tokens.txt (mode 0600) beside DATABASE_PATH; later, `toolgate users token <user>`.',
      ].join('\n'),
    )
    .action(async () => {
      const { main } = await import('../src/main.js');
      await main(process.env, envFileRead);
    });

  for (const add of [approveCommand, approvalsCommand, usersCommand, sessionsCommand, dbCommand, auditCommand, mcpCommand, receiptCommand, keysCommand, policyCommand, notifyCommand]) add(program);
  for (const name of ['approve', 'approvals', 'grants', 'mcp']) {
    const command = program.commands.find((c) => c.name() === name);
    for (const c of command ? [command, ...command.commands] : []) c.addHelpText('after', GATEWAY_CLIENT_HELP);
  }
  return program;
}

const GATEWAY_CLIENT_HELP = [
  '',
  'Environment:',
  '  TOOLGATE_URL    the gateway (default http://127.0.0.1:$PORT, PORT defaulting to 8020); --server wins',
  '  TOOLGATE_TOKEN  the API token; --token wins',
  '  (.env in the working directory is read too; real variables win)',
  '',
  'Warning: a token given as --token is visible to every user of this machine in `ps` and stays',
  'in your shell history. Prefer TOOLGATE_TOKEN, e.g. `read -rs TOOLGATE_TOKEN && export TOOLGATE_TOKEN`.',
].join('\n');

function wrap(names: readonly string[], width = 96): string[] {
  const lines: string[] = [];
  let line = ' ';
  for (const name of names) {
    if (line.length + name.length + 1 > width) {
      lines.push(line);
      line = ' ';
    }
    line += ` ${name}`;
  }
  if (line.trim()) lines.push(line);
  return lines;
}

/** The `.env` read at start, if any; `serve` logs it. */
let envFileRead: EnvFileRead | undefined;

export async function run(argv: string[]) {
  // Read once, here, before any command looks at the environment.
  envFileRead = loadEnvFile(process.env);
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`toolgate: ${safeText((err as Error).message)}\n`);
    process.exit(1);
  }
}
