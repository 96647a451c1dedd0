import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { api, runCli, runCliSync, startTestGateway, tempDir } from './helpers.js';

describe('configuration', () => {
  it('has the contract defaults', () => {
    expect(loadConfig({})).toMatchObject({
      port: 8020,
      host: '127.0.0.1',
      databasePath: './data/toolgate.db',
      rbacEnabled: true,
      approvalWorkflowEnabled: true,
      approvalTimeoutMs: 300_000,
      pollingIntervalMs: 1000,
      maxPending: 50,
      quorum: { HIGH: 1, CRITICAL: 1 },
      allowSelfApproval: false,
      trustUserHeader: false,
      logLevel: 'info',
    });
  });

  it('names the variable of a bad value', () => {
    expect(() => loadConfig({ APPROVAL_TIMEOUT: 'soon' })).toThrow(/APPROVAL_TIMEOUT/);
    expect(() => loadConfig({ RBAC_ENABLED: 'maybe' })).toThrow(/RBAC_ENABLED/);
    expect(() => loadConfig({ APPROVAL_MAX_PENDING: '0' })).toThrow(ConfigError);
  });

  it('stops `toolgate serve` with a message naming the variable', { tags: ['process'] }, () => {
    const res = runCliSync(['serve'], { PORT: 'eighty' });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('PORT');
  });
});

describe('toolgate users and db commands on the database file', () => {
  it('adds a user whose token (alone on the last line) works against a gateway on the same file, then disables it', { tags: ['process'], timeout: 60_000 }, async () => {
    const dir = tempDir();
    const dbPath = join(dir.path, 'toolgate.db');
    try {
      expect(runCliSync(['db', 'migrate'], { DATABASE_PATH: dbPath }).status).toBe(0);
      const seeded = runCliSync(['db', 'seed'], { DATABASE_PATH: dbPath });
      expect(seeded.stdout).toMatch(/admin_user\s+admin\s+tg_/);
      const added = runCliSync(['users', 'add', 'ci-bot', '--role', 'developer'], { DATABASE_PATH: dbPath });
      expect(added.status).toBe(0);
      const token = added.stdout.trim().split('\n').at(-1)!;
      expect(token).toMatch(/^tg_[A-Za-z0-9_-]{43}$/);
      expect(runCliSync(['users', 'add', 'ci-bot', '--role', 'developer'], { DATABASE_PATH: dbPath }).status).toBe(1);
      expect(runCliSync(['users', 'add', 'x', '--role', 'wizard'], { DATABASE_PATH: dbPath }).stderr).toContain('unknown role');

      const t = await startTestGateway({ dir: dir.path, dbPath });
      try {
        expect((await api(t.url, 'GET', '/tools', { token })).status).toBe(200);
        const list = await runCli(['users', 'list'], { DATABASE_PATH: dbPath });
        expect(list.stdout).toMatch(/ci-bot\s+developer\s+active/);
        expect((await runCli(['users', 'disable', 'ci-bot'], { DATABASE_PATH: dbPath })).status).toBe(0);
        expect((await api(t.url, 'GET', '/tools', { token })).status).toBe(401);

        const fresh = (await runCli(['users', 'token', 'dev_user'], { DATABASE_PATH: dbPath })).stdout.trim().split('\n').at(-1)!;
        expect((await api(t.url, 'GET', '/tools', { token: fresh })).status).toBe(200);
        const reset = await runCli(['db', 'seed', '--reset', '--yes'], { DATABASE_PATH: dbPath });
        expect(reset.stdout).toMatch(/dev_user\s+developer\s+tg_/);
        expect((await api(t.url, 'GET', '/tools', { token: fresh })).status).toBe(401);
      } finally {
        await t.close();
      }
    } finally {
      dir.remove();
    }
  }); // eleven CLI processes: slow on a loaded machine

  it('stores tokens only as SHA-256 hashes', async () => {
    const t = await startTestGateway();
    try {
      const rows = await t.query<{ token_hash: string }>('select token_hash, prefix from api_tokens');
      expect(rows).toHaveLength(3);
      const dump = JSON.stringify(await t.query('select * from api_tokens'));
      for (const token of Object.values(t.tokens)) expect(dump).not.toContain(token);
      for (const r of rows) expect(r.token_hash).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await t.close();
    }
  });
});
