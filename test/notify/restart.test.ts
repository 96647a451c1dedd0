// @module-tag process
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyToolgateSignature } from '../../src/notify/signature.js';
import { api, eventually, FIXTURE_SERVER, ROOT, tempDir } from '../helpers.js';
import { spawnGateway, type ChildGateway } from '../chaos/child-gateway.js';
import { TestReceiver } from '../kit/receiver.js';

const SECRET = 'a-receiver-secret-of-some-length';

describe('the outbox across a crash', () => {
  it('sends the deliveries a gateway killed with kill -9 left pending once it is back, each attempt id once', async () => {
    const dir = tempDir('toolgate-notify-crash-');
    const receiver = await TestReceiver.start();
    await receiver.stop();
    const config = join(dir.path, 'toolgate.json');
    writeFileSync(
      config,
      JSON.stringify({
        upstreams: [{ name: 'fixture', command: process.execPath, args: ['--import', 'tsx', FIXTURE_SERVER], cwd: ROOT }],
        notify: [{ name: 'hooks', url: receiver.url, secret: SECRET, timeoutSeconds: 1, retry: { maxAttempts: 100, minSeconds: 0.05, maxSeconds: 0.2 } }],
      }),
    );
    const env = { DATABASE_PATH: join(dir.path, 'toolgate.db'), TOOLGATE_CONFIG: config, APPROVAL_POLLING_INTERVAL: '0.1' };
    const gateways: ChildGateway[] = [];
    try {
      const first = await spawnGateway(env);
      gateways.push(first);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const made = await api(first.url, 'POST', '/api/approvals', { token: first.tokens.dev_user!, body: { tool: 'write_file', arguments: { path: `f${i}`, content: 'x' } } });
        expect(made.status).toBe(202);
        ids.push(made.body.approval.id);
      }
      expect((await api(first.url, 'POST', `/api/approvals/${ids[0]}/approve`, { token: first.tokens.admin_user!, body: { reason: 'ok' } })).status).toBe(200);
      // The receiver is down: every delivery has been tried and is waiting for its next attempt.
      const db = new Database(env.DATABASE_PATH, { readonly: true });
      try {
        await eventually(() => {
          const rows = db.prepare(`select attempts, status from notify_deliveries`).all() as { attempts: number; status: string }[];
          return rows.length === 4 && rows.filter((r) => r.attempts >= 1).length >= 3 && rows.every((r) => r.status === 'pending');
        }, 15_000);
      } finally {
        db.close();
      }
      first.killGroup();
      await first.exited;

      await receiver.restart();
      const second = await spawnGateway(env);
      gateways.push(second);
      await eventually(() => receiver.received.length >= 4, 15_000);
      const events = receiver.received.map((r) => ({ type: r.json.type as string, id: r.json.approval.id as string }));
      expect(events.filter((e) => e.id === ids[0]).map((e) => e.type)).toEqual(['approval.requested', 'approval.resolved']);
      for (const id of ids.slice(1)) expect(events.filter((e) => e.id === id).map((e) => e.type)).toEqual(['approval.requested']);
      for (const r of receiver.received) expect(verifyToolgateSignature(SECRET, r.headers['x-toolgate-signature'] as string, r.body, Date.now())).toBe(true);
      const attempts = receiver.received.map((r) => r.headers['x-toolgate-attempt']);
      expect(new Set(attempts).size).toBe(attempts.length);
      expect(receiver.received).toHaveLength(4);
    } finally {
      for (const g of gateways) g.killGroup();
      await receiver.close();
      dir.remove();
    }
  });
});
