import type { Command } from 'commander';
import { auditEvidence } from './audit.command.js';
import { safeText } from './format.js';
import { openExistingStore, withLocalStore } from './local.js';
import { cliActor, withUserAdmin } from './users.command.js';

const STATUSES = ['pending', 'approved', 'rejected', 'expired', 'cancelled'] as const;

export function dbCommand(program: Command) {
  const db = program.command('db').description('database maintenance (acts on DATABASE_PATH directly)');

  db.command('migrate')
    .description('create the database file if needed and apply the migrations in drizzle/')
    .action(async () => {
      const path = await withLocalStore((store) => store.path);
      process.stdout.write(`migrated ${path}\n`);
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
    .description('copy the database to FILE with SQLite online backup (safe while gateways serve), then check the copy')
    .argument('<file>', 'where to write the backup')
    .option('--force', 'overwrite FILE if it exists')
    .action(async (file: string, opts: { force?: boolean }) => {
      await withLocalStore(async (local) => {
        const result = await local.admin.backup(file, { overwrite: opts.force ?? false });
        if (result.check !== 'ok') throw new Error(`the copy in ${result.path} failed its check: ${result.check}`);
        process.stdout.write(`backed up ${local.path} to ${result.path} (${result.pages} pages, check ok)\n`);
      }, openExistingStore);
    });

  db.command('check')
    .description('integrity check, request counts by status, and the audit chain against its signed checkpoints; exit 1 on any problem')
    .action(async () => {
      const problems: string[] = [];
      const out = (line: string) => process.stdout.write(`${line}\n`);
      await withLocalStore(async (local) => {
        out(`database     ${local.path}`);
        const integrity = local.admin.checkIntegrity();
        const intact = integrity.integrity.length === 1 && integrity.integrity[0] === 'ok';
        out(`integrity    ${intact ? 'ok' : integrity.integrity.join('; ')}`);
        if (!intact) problems.push('integrity_check failed');
        out(`foreign keys ${integrity.foreignKeyViolations === 0 ? 'ok' : `${integrity.foreignKeyViolations} violations`}`);
        if (integrity.foreignKeyViolations > 0) problems.push('foreign key violations');
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
