import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectApprover } from '../ws-client.js';
import { api, eventually, runCliSync, tempDir } from '../helpers.js';
import { spawnGateway, writeFixtureConfig, type ChildGateway } from './child-gateway.js';

describe('graceful shutdown on SIGTERM', () => {
  it('stops accepting, answers 10 waiting callers 503 and cancels their requests, closes sockets with 1001, flushes and exits 0 within 10 s', async () => {
    const dir = tempDir('toolgate-term-');
    const env = {
      DATABASE_PATH: join(dir.path, 'toolgate.db'),
      TOOLGATE_CONFIG: writeFixtureConfig(dir.path, join(dir.path, 'counter.txt')),
    };
    let g: ChildGateway | undefined;
    try {
      g = await spawnGateway(env);
      const gw = g;
      const { dev_user: dev, admin_user: admin } = gw.tokens as Record<string, string>;
      const waiting = Array.from({ length: 10 }, (_, i) => api(gw.url, 'POST', '/tools/write_file/call', { token: dev, body: { arguments: { path: `w${i}`, content: 'x' } } }));
      const queued = await api(gw.url, 'POST', '/tools/write_file/call', { token: dev, body: { arguments: { path: 'async', content: 'x' } }, headers: { prefer: 'respond-async' } });
      expect(queued.status).toBe(202);
      const longPoll = api(gw.url, 'GET', `/api/approvals/${queued.body.approval.id}?wait=30`, { token: dev });
      const approvers = await Promise.all(Array.from({ length: 5 }, () => connectApprover(gw.wsUrl, admin)));
      await eventually(async () => (await api(gw.url, 'GET', '/api/approvals/pending', { token: admin })).body.count === 11);

      const started = Date.now();
      gw.child.kill('SIGTERM');
      const answers = await Promise.all(waiting);
      for (const a of answers) {
        expect(a.status).toBe(503);
        expect(a.body.error).toMatchObject({ code: 'shutting_down', message: expect.any(String) });
      }
      const closes = await Promise.all(approvers.map((a) => a.closed));
      for (const c of closes) expect(c.code).toBe(1001);
      const polled = await longPoll;
      const late = await api(gw.url, 'GET', '/health').catch((e: Error) => e);
      const exit = await gw.exited;
      const tookMs = Date.now() - started;
      expect(exit.code).toBe(0);
      expect(tookMs).toBeLessThan(10_000);
      // Refused or 503, never served as if nothing happened.
      if (!(late instanceof Error)) expect(late.body.status).not.toBe('ok');
      // A long-poll is answered at once too, not cut off when the connections are closed.
      expect(polled.status).toBe(503);
      expect(polled.body).toMatchObject({ error: { code: 'shutting_down' }, approval: { status: 'pending' } });

      const db = new Database(env.DATABASE_PATH, { readonly: true });
      try {
        const rows = db.prepare('select mode, status, status_reason as reason from approval_requests').all() as { mode: string; status: string; reason: string }[];
        expect(rows.filter((r) => r.mode === 'wait').map((r) => `${r.status}:${r.reason}`)).toEqual(Array(10).fill('cancelled:gateway shutting down'));
        expect(rows.filter((r) => r.mode === 'async').map((r) => r.status)).toEqual(['pending']);
      } finally {
        db.close();
      }
      // Flushed: the WAL was checkpointed into the main file.
      const wal = `${env.DATABASE_PATH}-wal`;
      expect(!existsSync(wal) || statSync(wal).size === 0).toBe(true);
      expect(runCliSync(['audit', 'verify'], { DATABASE_PATH: env.DATABASE_PATH }).status).toBe(0);
      console.info(`SIGTERM to exit: ${tookMs} ms; long-poll answered ${polled.status}`);
    } finally {
      g?.killGroup();
      dir.remove();
    }
  }, 60_000);
});
