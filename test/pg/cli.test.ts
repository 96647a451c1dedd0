import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers.js';
import { freshDatabase, postgresAvailable, SKIP_REASON } from '../kit/postgres.js';

describe.skipIf(!postgresAvailable())(`toolgate db commands on PostgreSQL${postgresAvailable() ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  it('migrates a new database from two processes at once, seeds it, checks what applies, and sends backups to pg_dump', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    try {
      const url = await freshDatabase({ empty: true });
      // The signing key and first-run files stay out of the checkout.
      const env = { DATABASE_URL: url, AUDIT_SIGNING_KEY: join(dir.path, 'audit-signing.key'), DATABASE_PATH: join(dir.path, 'unused.db') };
      const migrations = await Promise.all([runCli(['db', 'migrate'], env), runCli(['db', 'migrate'], env)]);
      for (const m of migrations) expect({ status: m.status, stderr: m.stderr }).toEqual({ status: 0, stderr: '' });
      expect(migrations[0]!.stdout.trim()).toBe(`migrated ${url}`);

      const seed = await runCli(['db', 'seed'], env);
      expect(seed.status).toBe(0);
      expect(seed.stdout).toMatch(/^admin_user\s+admin\s+tg_/m);

      const added = await runCli(['users', 'add', 'ops', '--role', 'admin'], env);
      expect(added.status).toBe(0);
      const list = await runCli(['users', 'list'], env);
      expect(list.stdout).toMatch(/^ops\s+admin\s+active\s+tokens=1$/m);

      const check = await runCli(['db', 'check'], env);
      expect({ status: check.status, stderr: check.stderr }).toEqual({ status: 0, stderr: '' });
      expect(check.stdout).toMatch(/^server\s+PostgreSQL \d+/m);
      expect(check.stdout).toMatch(/^migrations\s+ok \(\d+ applied\)$/m);
      expect(check.stdout).toMatch(/^audit chain\s+ok: \d+ events verified/m);
      expect(check.stdout).toContain('all checks passed');

      const backup = await runCli(['db', 'backup', join(dir.path, 'copy.db')], env);
      expect(backup.status).toBe(1);
      expect(backup.stderr).toContain('pg_dump');
    } finally {
      dir.remove();
    }
  });

  it('says which migrations are missing on a database that was never migrated, and fails', { timeout: 60_000 }, async () => {
    const url = await freshDatabase({ empty: true });
    const check = await runCli(['db', 'check'], { DATABASE_URL: url });
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/^migrations\s+0 of \d+ applied$/m);
  });
});
