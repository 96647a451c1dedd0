import type { Command } from 'commander';
import { createAuditLog } from '../src/audit/audit.service.js';
import { AuthService } from '../src/auth/auth.service.js';
import { ConsoleSessions } from '../src/auth/sessions.service.js';
import { loadConfig } from '../src/config.js';
import { randomUUID } from 'node:crypto';
import { safeText } from './format.js';
import { withLocalStore } from './local.js';
import { cliActor } from './users.command.js';

/**
 * Web console sessions on the database file. A revoked session is refused on its next HTTP call
 * at once; a gateway closes its socket within a polling interval (the socket recheck job).
 */
function withSessions<T>(fn: (sessions: ConsoleSessions) => Promise<T>): Promise<T> {
  return withLocalStore((store) => {
    const clock = { now: () => Date.now() };
    const sessions = new ConsoleSessions({
      store,
      auth: new AuthService(store.identity, { trustUserHeader: false, clock }),
      audit: createAuditLog({ clock, instanceId: `cli-${process.pid}` }),
      clock,
      ids: { uuid: () => randomUUID() },
      ttlMs: loadConfig(process.env).consoleSessionTtlMs,
      // The CLI only lists and revokes; signing in happens at the gateway.
      mayHoldSession: () => false,
    });
    return fn(sessions);
  });
}

export function sessionsCommand(program: Command) {
  const sessions = program.command('sessions').description('list and revoke web console sessions (acts on DATABASE_PATH directly)');

  sessions
    .command('list')
    .description('live console sessions (neither revoked nor expired), newest first')
    .option('--user <id>', "only this user's")
    .option('--json', 'print JSON')
    .action(async (opts: { user?: string; json?: boolean }) => {
      const rows = await withSessions((s) => s.list(opts.user));
      if (opts.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      if (rows.length === 0) return void process.stdout.write('no live console sessions\n');
      for (const r of rows) {
        const line = [r.id, r.userId.padEnd(16), `since ${new Date(r.createdAt).toISOString()}`, `until ${new Date(r.expiresAt).toISOString()}`, r.address, safeText(r.userAgent).slice(0, 60)];
        process.stdout.write(`${line.join('  ')}\n`);
      }
    });

  sessions
    .command('revoke [id]')
    .description('end a console session at once (or every session of a user with --user)')
    .option('--user <id>', 'revoke every session of this user')
    .action(async (id: string | undefined, opts: { user?: string }) => {
      if (!id && !opts.user) throw new Error('give a session id (see `toolgate sessions list`) or --user <id>');
      if (opts.user) {
        const ended = await withSessions((s) => s.revokeAllOf(cliActor(), opts.user!));
        return void process.stdout.write(`revoked ${ended.length} session${ended.length === 1 ? '' : 's'} of ${opts.user}\n`);
      }
      const ended = await withSessions((s) => s.revoke(cliActor(), id!));
      process.stdout.write(`revoked session ${ended.id} of ${ended.userId}\n`);
    });
}
