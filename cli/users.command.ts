import type { Command } from 'commander';
import { createUserWithToken, issueToken } from '../src/db/seed.js';
import { withLocalStore } from './local.js';

export function usersCommand(program: Command) {
  const users = program.command('users').description('manage users and tokens (acts on DATABASE_PATH directly)');

  users
    .command('add <id>')
    .description('create a user; the new token is printed once, alone on the last line')
    .requiredOption('--role <role>', 'guest, developer, admin or another seeded role')
    .action((id: string, opts: { role: string }) => {
      if (!/^[A-Za-z0-9._@-]{1,64}$/.test(id)) throw new Error('user ids are 1-64 letters, digits, . _ @ -');
      const token = withLocalStore((store) => {
        if (!store.roleNames().includes(opts.role)) throw new Error(`unknown role "${opts.role}" (known: ${store.roleNames().join(', ')})`);
        if (store.user(id)) throw new Error(`user "${id}" already exists; use \`toolgate users token ${id}\` for a new token`);
        return createUserWithToken(store, id, opts.role, Date.now());
      });
      process.stdout.write(`created user ${id} (${opts.role}); this token is shown once:\n${token}\n`);
    });

  users
    .command('token <id>')
    .description('issue a new token for a user (printed once, alone on the last line)')
    .option('--revoke-others', 'revoke the user\'s existing tokens first')
    .action((id: string, opts: { revokeOthers?: boolean }) => {
      const token = withLocalStore((store) => {
        if (!store.user(id)) throw new Error(`no user "${id}"`);
        return store.transaction(() => {
          if (opts.revokeOthers) store.revokeTokens(id, Date.now());
          return issueToken(store, id, Date.now());
        });
      });
      process.stdout.write(`new token for ${id}; shown once:\n${token}\n`);
    });

  users
    .command('disable <id>')
    .description('disable a user: every request with their tokens is refused from now on')
    .action((id: string) => {
      withLocalStore((store) => {
        if (!store.setUserActive(id, false, Date.now())) throw new Error(`no user "${id}"`);
      });
      process.stdout.write(`disabled ${id}\n`);
    });

  users
    .command('enable <id>')
    .description('enable a disabled user again')
    .action((id: string) => {
      withLocalStore((store) => {
        if (!store.setUserActive(id, true, Date.now())) throw new Error(`no user "${id}"`);
      });
      process.stdout.write(`enabled ${id}\n`);
    });

  users
    .command('list')
    .description('list users, their roles and how many live tokens they have')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const rows = withLocalStore((store) => store.listUsers());
      if (opts.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      for (const u of rows) {
        process.stdout.write(`${u.id.padEnd(20)} ${u.role.padEnd(10)} ${u.active ? 'active  ' : 'disabled'} tokens=${u.tokens}\n`);
      }
    });
}
