import { describe, expect, it } from 'vitest';
import { redact, verifyAuditChain } from '../src/audit/audit.service.js';
import { api, pendingApprovals, runCliSync, startTestGateway } from './helpers.js';

describe('audit log', () => {
  it('records every step with redacted arguments, serves it to admins, and its chain verifies until a row is altered', { tags: ['process'] }, async () => {
    const t = await startTestGateway();
    try {
      await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: { message: 'hi', api_key: 'sk-secret' } } });
      await api(t.url, 'POST', '/tools/git_commit/call', { token: t.tokens.dev, body: { arguments: { message: 'x' } } });
      const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'p', content: 'c', password: 'hunter2' } } });
      const [p] = await pendingApprovals(t);
      await api(t.url, 'POST', `/api/approvals/${p.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
      await call;

      const res = await api(t.url, 'GET', '/security/logs/audit?limit=50', { token: t.tokens.admin });
      expect(res.status).toBe(200);
      const actions = res.body.events.map((e: { action: string }) => e.action);
      expect(actions).toEqual(['execution.succeeded', 'execution.started', 'approval.approved', 'approval.requested', 'tool.denied', 'tool.executed']);
      const text = JSON.stringify(res.body);
      expect(text).not.toContain('sk-secret');
      expect(text).not.toContain('hunter2');
      expect(text).toContain('[REDACTED]');
      const filtered = await api(t.url, 'GET', '/security/logs/audit?user=admin_user', { token: t.tokens.admin });
      expect(filtered.body.events.map((e: { action: string }) => e.action)).toEqual(['approval.approved']);
      expect((await api(t.url, 'GET', '/security/logs/audit', { token: t.tokens.dev })).status).toBe(403);
      expect((await api(t.url, 'GET', '/security/logs/audit?limit=abc', { token: t.tokens.admin })).status).toBe(400);

      expect(await verifyAuditChain(t.gateway.store)).toMatchObject({ ok: true, checked: 6 });
      const cli = runCliSync(['audit', 'verify'], { DATABASE_PATH: t.dbPath });
      expect(cli.status).toBe(0);
      expect(cli.stdout).toContain('audit chain ok: 6 events');

      await t.query("update audit_events set actor = 'someone_else' where seq = 3");
      expect(await verifyAuditChain(t.gateway.store)).toMatchObject({ ok: false, brokenAt: { seq: 3 } });
      const broken = runCliSync(['audit', 'verify'], { DATABASE_PATH: t.dbPath });
      expect(broken.status).toBe(1);
      expect(broken.stdout).toContain('BROKEN at event 3');
    } finally {
      await t.close();
    }
  });

  it('redacts secret-looking keys at any depth', () => {
    expect(redact({ a: 1, nested: { Password: 'x', list: [{ token: 'y', ok: 'z' }] }, API_KEY: 'k' })).toEqual({
      a: 1,
      nested: { Password: '[REDACTED]', list: [{ token: '[REDACTED]', ok: 'z' }] },
      API_KEY: '[REDACTED]',
    });
  });
});
