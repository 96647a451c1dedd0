import type { Command } from 'commander';
import { seedDatabase } from '../src/db/seed.js';
import { withLocalStore } from './local.js';

export function dbCommand(program: Command) {
  const db = program.command('db').description('database maintenance (acts on DATABASE_PATH directly)');

  db.command('migrate')
    .description('create the database file if needed and apply the migrations in drizzle/')
    .action(() => {
      const path = withLocalStore((_store, p) => p);
      process.stdout.write(`migrated ${path}\n`);
    });

  db.command('seed')
    .description('seed roles, the tool catalog and the three users; prints new tokens once')
    .option('--reset', 'replace users, tokens, grants and policies (requests and the audit log stay)')
    .action((opts: { reset?: boolean }) => {
      const tokens = withLocalStore((store) => seedDatabase(store, { reset: opts.reset ?? false, now: Date.now() }));
      if (tokens.length === 0) process.stdout.write('already seeded; no new users (use --reset to start over)\n');
      for (const t of tokens) process.stdout.write(`${t.user.padEnd(11)} ${t.role.padEnd(9)} ${t.token}\n`);
    });
}
