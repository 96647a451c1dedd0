import { Command, CommanderError, Option } from 'commander';
import { approveCommand } from './approve.command.js';
import { approvalsCommand } from './approvals.command.js';
import { auditCommand } from './audit.command.js';
import { dbCommand } from './db.command.js';
import { mcpCommand } from './mcp.command.js';
import { usersCommand } from './users.command.js';

/** Builds the `toolgate` program. Subcommands register themselves from their own files. */
export function buildProgram(): Command {
  const program = new Command('toolgate')
    .description('toolgate — a human-approval gateway for AI-agent tool calls')
    .version('0.1.0')
    .addOption(new Option('--server <url>', 'gateway URL (default $TOOLGATE_URL or http://127.0.0.1:8020)'))
    .addOption(new Option('--token <token>', 'API token (default $TOOLGATE_TOKEN)'))
    .showHelpAfterError();

  program
    .command('serve')
    .description('start the gateway (configured by environment variables)')
    .action(async () => {
      const { main } = await import('../src/main.js');
      await main();
    });

  for (const add of [approveCommand, approvalsCommand, usersCommand, dbCommand, auditCommand, mcpCommand]) add(program);
  return program;
}

export async function run(argv: string[]) {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    process.stderr.write(`toolgate: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
