import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { createAuditLog } from '../src/audit/audit.service.js';
import { UserAdmin } from '../src/auth/users.service.js';
import type { Persistence } from '../src/core/persistence.js';
import { withLocalStore } from './local.js';
import { SlackLinks } from '../src/notify/slack-links.js';

/** Who ran the command, as audit events name them. */
export function cliActor(): string {
  let name = process.env.USER ?? 'unknown';
  try {
    name = userInfo().username;
  } catch {
    /* no passwd entry (a container's arbitrary uid) */
  }
  return `cli:${name}`;
}

/**
 * User management on the database file. Its audit events carry this process's own instance id, so
 * every gateway's polling feed picks them up: waiting callers of cancelled requests are answered
 * and disabled approvers' sockets closed within a polling interval.
 */
export function withUserAdmin<T>(fn: (admin: UserAdmin, store: Persistence) => Promise<T>): Promise<T> {
  return withLocalStore((store) => {
    const clock = { now: () => Date.now() };
    return fn(new UserAdmin({ store, clock, audit: createAuditLog({ clock, instanceId: `cli-${process.pid}` }) }), store);
  });
}

function withSlackLinks<T>(fn: (links: SlackLinks) => Promise<T>): Promise<T> {
  return withLocalStore((store) => {
    const clock = { now: () => Date.now() };
    return fn(new SlackLinks({ store, clock, audit: createAuditLog({ clock, instanceId: `cli-${process.pid}` }) }));
  });
}

export function usersCommand(program: Command) {
  const users = program.command('users').description('manage users and tokens (acts on DATABASE_URL or DATABASE_PATH directly)');

  users
    .command('add <id>')
    .description('create a user; the new token is printed once, alone on the last line')
    .requiredOption('--role <role>', 'guest, developer, admin or another seeded role')
    .action(async (id: string, opts: { role: string }) => {
      const token = await withUserAdmin((admin) => admin.add(cliActor(), id, opts.role));
      process.stdout.write(`created user ${id} (${opts.role}); this token is shown once:\n${token}\n`);
    });

  users
    .command('token <id>')
    .description('issue a new token for a user (printed once, alone on the last line)')
    .option('--revoke-others', "revoke the user's existing tokens first (their pending requests are cancelled)")
    .action(async (id: string, opts: { revokeOthers?: boolean }) => {
      const token = await withUserAdmin((admin) => admin.issueToken(cliActor(), id, { revokeOthers: opts.revokeOthers ?? false }));
      process.stdout.write(`new token for ${id}; shown once:\n${token}\n`);
    });

  users
    .command('disable <id>')
    .description('disable a user: refused from now on, pending requests cancelled, approved ones never run')
    .action(async (id: string) => {
      const { cancelled } = await withUserAdmin((admin) => admin.disable(cliActor(), id));
      process.stdout.write(`disabled ${id}${cancelled > 0 ? `; cancelled ${cancelled} pending request${cancelled === 1 ? '' : 's'}` : ''}\n`);
    });

  users
    .command('enable <id>')
    .description('enable a disabled user again')
    .action(async (id: string) => {
      await withUserAdmin((admin) => admin.enable(cliActor(), id));
      process.stdout.write(`enabled ${id}\n`);
    });

  users
    .command('link-slack <id> <slack-user-id>')
    .description("link a Slack member id (U…) to a user: their Approve/Reject presses in Slack decide as that user (docs/notifications.md)")
    .action(async (id: string, slackUserId: string) => {
      await withSlackLinks((links) => links.link(cliActor(), id, slackUserId));
      process.stdout.write(`linked Slack user ${slackUserId} to ${id}\n`);
    });

  users
    .command('unlink-slack <id>')
    .description("remove a user's Slack link: their presses in Slack decide nothing from now on")
    .action(async (id: string) => {
      const removed = await withSlackLinks((links) => links.unlink(cliActor(), id));
      process.stdout.write(removed ? `unlinked ${id} from Slack\n` : `${id} had no Slack link\n`);
    });

  users
    .command('list')
    .description('list users, their roles and how many live tokens they have')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withLocalStore((store) => store.identity.listUsers());
      if (opts.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      for (const u of rows) {
        process.stdout.write(`${u.id.padEnd(20)} ${u.role.padEnd(10)} ${u.active ? 'active  ' : 'disabled'} tokens=${u.tokens}\n`);
      }
    });
}
