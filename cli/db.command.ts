import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/client.js';
import { backupDatabase, checkIntegrity } from '../src/db/maintenance.js';
import { Store } from '../src/db/store.js';
import { auditEvidence } from './audit.command.js';
import { safeText } from './format.js';
import { withLocalStore } from './local.js';
import { cliActor, withUserAdmin } from './users.command.js';

const STATUSES = ['pending', 'approved', 'rejected', 'expired', 'cancelled'] as const;

/** Opens an existing DATABASE_PATH without migrating it: maintenance must not create or change a file. */
function openExisting(): { store: Store; path: string; close(): void } {
  const { databasePath } = loadConfig(process.env);
  if (!existsSync(databasePath)) throw new Error(`no database at ${databasePath} (set DATABASE_PATH)`);
  const handle = openDatabase(databasePath, { migrate: false });
  return { store: new Store(handle), path: databasePath, close: () => handle.close() };
}

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
    .option('--reset', 'delete every user, token, grant and policy, then seed again (requests and the audit log stay); needs --yes')
    .option('--yes', 'confirm --reset')
    .action((opts: { reset?: boolean; yes?: boolean }) => {
      const reset = opts.reset ?? false;
      const tokens = withUserAdmin((admin, store) => {
        if (reset) {
          const doomed = store.listUsers().map((u) => safeText(u.id));
          const what = `${doomed.length} user${doomed.length === 1 ? '' : 's'}${doomed.length ? ` (${doomed.join(', ')})` : ''}`;
          if (!opts.yes) {
            process.stderr.write(
              `toolgate: db seed --reset would delete ${what} with all their tokens, the grants and the tool policies, ` +
                'then seed the three default users again (requests and the audit log stay).\n' +
                'Run it again with --yes to do that. Lost a token? `toolgate users token <user>` issues a new one and deletes nothing.\n',
            );
            return null;
          }
          process.stdout.write(`deleting ${what}, their tokens, the grants and the tool policies\n`);
        }
        return admin.seed(cliActor(), { reset });
      });
      if (tokens === null) {
        process.exitCode = 1;
        return;
      }
      if (tokens.length === 0) process.stdout.write('already seeded; no new users (lost a token? `toolgate users token <user>`)\n');
      for (const t of tokens) process.stdout.write(`${t.user.padEnd(11)} ${t.role.padEnd(9)} ${t.token}\n`);
    });

  db.command('backup')
    .description('copy the database to FILE with SQLite online backup (safe while gateways serve), then check the copy')
    .argument('<file>', 'where to write the backup')
    .option('--force', 'overwrite FILE if it exists')
    .action(async (file: string, opts: { force?: boolean }) => {
      const local = openExisting();
      try {
        const result = await backupDatabase(local.store, file, { overwrite: opts.force ?? false });
        if (result.check !== 'ok') throw new Error(`the copy in ${result.path} failed its check: ${result.check}`);
        process.stdout.write(`backed up ${local.path} to ${result.path} (${result.pages} pages, check ok)\n`);
      } finally {
        local.close();
      }
    });

  db.command('check')
    .description('integrity check, request counts by status, and the audit chain against its signed checkpoints; exit 1 on any problem')
    .action(() => {
      const local = openExisting();
      const problems: string[] = [];
      const out = (line: string) => process.stdout.write(`${line}\n`);
      try {
        out(`database     ${local.path}`);
        const integrity = checkIntegrity(local.store);
        const intact = integrity.integrity.length === 1 && integrity.integrity[0] === 'ok';
        out(`integrity    ${intact ? 'ok' : integrity.integrity.join('; ')}`);
        if (!intact) problems.push('integrity_check failed');
        out(`foreign keys ${integrity.foreignKeyViolations === 0 ? 'ok' : `${integrity.foreignKeyViolations} violations`}`);
        if (integrity.foreignKeyViolations > 0) problems.push('foreign key violations');
        const counts = local.store.countByStatus();
        out(`requests     ${STATUSES.map((s) => `${s} ${counts[s] ?? 0}`).join(', ')}`);
        const evidence = auditEvidence(local.store);
        out(`audit chain  ${evidence.chain}`);
        out(`checkpoints  ${evidence.checkpoints.join('\n')}`);
        problems.push(...evidence.problems);
      } finally {
        local.close();
      }
      if (problems.length > 0) {
        out(`PROBLEMS: ${problems.join('; ')}`);
        process.exitCode = 1;
      } else out('all checks passed');
    });
}
