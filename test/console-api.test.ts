import { afterEach, describe, expect, it } from 'vitest';
import { api, startTestGateway, type TestGateway } from './helpers.js';

const open: TestGateway[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});
async function gateway() {
  const t = await startTestGateway();
  open.push(t);
  return t;
}

async function asyncCall(t: TestGateway, tool: string, args: Record<string, unknown>, token = t.tokens.dev) {
  const res = await api(t.app, 'POST', `/tools/${tool}/call`, { token, body: { arguments: args }, headers: { prefer: 'respond-async' } });
  expect(res.status).toBe(202);
  return res.body.approval.id as string;
}

describe('the approvals history', () => {
  it('lists requests of every status newest first, filtered by status, tool, requester and time, for approvers only', async () => {
    const t = await gateway();
    const a = await asyncCall(t, 'write_file', { path: 'a', content: '' });
    const b = await asyncCall(t, 'execute_bash', { command: 'ls' });
    const c = await asyncCall(t, 'write_file', { path: 'c', content: '' }, t.tokens.admin);
    await api(t.app, 'POST', `/api/approvals/${a}/approve`, { token: t.tokens.admin, body: { reason: 'fine' } });
    await api(t.app, 'POST', `/api/approvals/${b}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
    const ids = async (query: string) => {
      const res = await api(t.app, 'GET', `/api/approvals${query}`, { token: t.tokens.admin });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.count).toBe(res.body.approvals.length);
      return res.body.approvals.map((x: { id: string }) => x.id);
    };
    expect(await ids('')).toEqual([c, b, a]);
    expect(await ids('?status=approved,rejected')).toEqual([b, a]);
    expect(await ids('?status=rejected')).toEqual([b]);
    expect(await ids('?tool=write_file')).toEqual([c, a]);
    expect(await ids('?requester=dev_user')).toEqual([b, a]);
    expect(await ids('?limit=1')).toEqual([c]);
    const all = (await api(t.app, 'GET', '/api/approvals', { token: t.tokens.admin })).body.approvals;
    expect(await ids(`?before=${encodeURIComponent(all[0].requestedAt)}`)).not.toContain(c);
    expect(await ids(`?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    const rejected = all.find((x: { id: string }) => x.id === b);
    expect(rejected).toMatchObject({ status: 'rejected', decisions: [{ approver: 'admin_user', verdict: 'reject', reason: 'no' }] });

    expect((await api(t.app, 'GET', '/api/approvals', { token: t.tokens.dev })).status).toBe(403);
    expect((await api(t.app, 'GET', '/api/approvals')).status).toBe(401);
    const bad = await api(t.app, 'GET', '/api/approvals?status=approved,bogus', { token: t.tokens.admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
  });
});

describe('the audit log for the console', () => {
  it("filters one request's events", async () => {
    const t = await gateway();
    const a = await asyncCall(t, 'write_file', { path: 'a', content: '' });
    await asyncCall(t, 'write_file', { path: 'b', content: '' });
    await api(t.app, 'POST', `/api/approvals/${a}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
    const res = await api(t.app, 'GET', `/security/logs/audit?request=${a}`, { token: t.tokens.admin });
    expect(res.body.events.map((e: { action: string }) => e.action)).toEqual(['approval.rejected', 'approval.requested']);
    expect(res.body.events.every((e: { requestId: string }) => e.requestId === a)).toBe(true);
  });

  it('verifies the chain for admins, and reports the first altered event', async () => {
    const t = await gateway();
    await asyncCall(t, 'write_file', { path: 'a', content: '' });
    expect((await api(t.app, 'GET', '/security/logs/audit/verify', { token: t.tokens.dev })).status).toBe(403);
    const good = await api(t.app, 'GET', '/security/logs/audit/verify', { token: t.tokens.admin });
    expect(good.status).toBe(200);
    expect(good.body).toMatchObject({ ok: true, chain: { ok: true, anchorSeq: 0, brokenAt: null }, checkpoints: { ok: true } });
    expect(good.body.chain.checked).toBeGreaterThanOrEqual(1);
    const seq = Number((await t.query<{ seq: number | string }>("SELECT seq FROM audit_events WHERE action = 'approval.requested'"))[0]!.seq);
    await t.query('UPDATE audit_events SET actor = ? WHERE seq = ?', 'someone_else', seq);
    const bad = await api(t.app, 'GET', '/security/logs/audit/verify', { token: t.tokens.admin });
    expect(bad.body).toMatchObject({ ok: false, chain: { ok: false, brokenAt: { seq, reason: 'hash does not match the event (it was altered)' } } });
  });
});

describe('the console page', () => {
  it('serves the page under a strict CSP that allows only its own scripts and its import map, and its files from the package', async () => {
    const t = await gateway();
    const root = await t.app.request('/');
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console');
    const page = await t.app.request('/console');
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const csp = page.headers.get('content-security-policy')!;
    const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const { createHash } = await import('node:crypto');
    expect(csp).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(importMap).digest('base64')}'`);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    // Every other script is a file of the gateway's, and every module the import map names is served.
    expect([...html.matchAll(/<script(?![^>]*type="importmap")[^>]*>/g)].every((m) => /src="\/console\/assets\/[a-z-]+\.js"/.test(m[0]))).toBe(true);
    for (const path of Object.values(JSON.parse(importMap).imports) as string[]) {
      const res = await t.app.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    }
    expect((await t.app.request('/console/assets/app.js')).status).toBe(200);
    expect((await t.app.request('/console/assets/..%2Fconsole.routes.ts')).status).toBe(404);
    expect((await t.app.request('/console/vendor/nope.mjs')).status).toBe(404);
  });
});
