import type { Command } from 'commander';
import { loadConfig } from '../src/config.js';
import { auditEvidence } from './audit.command.js';
import { safeText } from './format.js';
import { openExistingStore, withLocalStore } from './local.js';
import { cliActor, withUserAdmin } from './users.command.js';

const STATUSES = ['pending', 'approved', 'rejected', 'expired', 'cancelled'] as const;

export function dbCommand(program: Command) {
  const db = program.command('db').description('database maintenance (acts on DATABASE_URL or DATABASE_PATH directly)');

  db.command('migrate')
    .description('apply the migrations in drizzle/ (SQLite: creating the file if needed; PostgreSQL: under an advisory lock)')
    .action(async () => {
      const location = await withLocalStore((store) => store.location);
      process.stdout.write(`migrated ${location}\n`);
    });

  db.command('seed')
    .description('seed roles, the tool catalog and the three users; prints new tokens once')
    .option('--reset', 'delete every user, token, grant and policy, then seed again (requests and the audit log stay); needs --yes')
    .option('--yes', 'confirm --reset')
    .action(async (opts: { reset?: boolean; yes?: boolean }) => {
      const reset = opts.reset ?? false;
      const tokens = await withUserAdmin(async (admin, store) => {
        if (reset) {
          const doomed = (await store.identity.listUsers()).map((u) => safeText(u.id));
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
    .description('copy the SQLite database to FILE with SQLite online backup (safe while gateways serve), then check the copy; on PostgreSQL use pg_dump')
    .argument('<file>', 'where to write the backup')
    .option('--force', 'overwrite FILE if it exists')
    .action(async (file: string, opts: { force?: boolean }) => {
      if (loadConfig(process.env).databaseUrl) {
        throw new Error(
          'db backup copies a SQLite file; on PostgreSQL (DATABASE_URL) back up with pg_dump, which takes a consistent snapshot while gateways serve: ' +
            `pg_dump --format=custom --file ${JSON.stringify(file)} "$DATABASE_URL" (restore with pg_restore)`,
        );
      }
      await withLocalStore(async (local) => {
        if (local.kind !== 'sqlite') throw new Error('db backup needs a SQLite store');
        const result = await local.admin.backup(file, { overwrite: opts.force ?? false });
        if (result.check !== 'ok') throw new Error(`the copy in ${result.path} failed its check: ${result.check}`);
        process.stdout.write(`backed up ${local.path} to ${result.path} (${result.pages} pages, check ok)\n`);
      }, openExistingStore);
    });

  db.command('check')
    .description('SQLite: integrity check; PostgreSQL: connection and migrations; then request counts by status and the audit chain against its signed checkpoints; exit 1 on any problem')
    .action(async () => {
      const problems: string[] = [];
      const out = (line: string) => process.stdout.write(`${line}\n`);
      await withLocalStore(async (local) => {
        out(`database     ${local.location}`);
        if (local.kind === 'sqlite') {
          const integrity = local.admin.checkIntegrity();
          const intact = integrity.integrity.length === 1 && integrity.integrity[0] === 'ok';
          out(`integrity    ${intact ? 'ok' : integrity.integrity.join('; ')}`);
          if (!intact) problems.push('integrity_check failed');
          out(`foreign keys ${integrity.foreignKeyViolations === 0 ? 'ok' : `${integrity.foreignKeyViolations} violations`}`);
          if (integrity.foreignKeyViolations > 0) problems.push('foreign key violations');
        } else {
          // PostgreSQL keeps its own pages and constraints; what applies here is reaching it and its schema.
          out(`server       ${await local.admin.serverVersion()}`);
          const { applied, known } = await local.admin.migrations();
          out(`migrations   ${applied === known ? `ok (${applied} applied)` : `${applied} of ${known} applied`}`);
          if (applied < known) problems.push(`${known - applied} migrations not applied (run toolgate db migrate)`);
          if (applied > known) problems.push(`the database has ${applied - known} migrations this build does not know (an older toolgate?)`);
        }
        const counts = await local.approvals.countByStatus();
        out(`requests     ${STATUSES.map((s) => `${s} ${counts[s] ?? 0}`).join(', ')}`);
        const evidence = await auditEvidence(local);
        out(`audit chain  ${evidence.chain}`);
        out(`checkpoints  ${evidence.checkpoints.join('\n')}`);
        problems.push(...evidence.problems);
      }, openExistingStore);
      if (problems.length > 0) {
        out(`PROBLEMS: ${problems.join('; ')}`);
        process.exitCode = 1;
      } else out('all checks passed');
    });
}
