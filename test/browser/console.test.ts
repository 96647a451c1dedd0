import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, eventually, startTestGateway, tempDir } from '../helpers.js';
import { asyncRequest, consoleGateway, describeInBrowser, launch, openPage, signIn } from './kit.js';

describeInBrowser('web console', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('signs in with a token for an HttpOnly, SameSite=Strict session cookie under a strict CSP, and signs out', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      const response = await page.goto(`${t.url}/`);
      expect(page.url()).toBe(`${t.url}/console`);
      const csp = response!.headers()['content-security-policy']!;
      expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);

      await page.getByLabel('Approver token').fill('tg_not-a-real-token');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('invalid or revoked token');
      expect(await context.cookies()).toEqual([]);

      await page.getByLabel('Approver token').fill(t.tokens.admin);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('[data-connection="connected"]').waitFor();
      expect(await page.locator('.who').textContent()).toContain('admin_user');
      const [cookie, ...others] = await context.cookies();
      expect(others).toEqual([]);
      expect(cookie).toMatchObject({ name: 'toolgate_session', httpOnly: true, sameSite: 'Strict', secure: false, path: '/' });
      // Neither the token nor the session secret is readable by the page's scripts.
      expect(await page.evaluate(() => document.cookie)).toBe('');
      expect(await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))).not.toContain('tg_');
      // Stored hashed: the secret itself is nowhere in the database.
      const rows = t.sql().prepare('SELECT user_id, secret_hash, revoked_at FROM console_sessions').all() as { user_id: string; secret_hash: string; revoked_at: number | null }[];
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ user_id: 'admin_user', revoked_at: null });
      expect(rows[0]!.secret_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(rows[0]!.secret_hash).not.toContain(cookie!.value);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Approver token').waitFor();
      expect(await context.cookies()).toEqual([]);
      expect((t.sql().prepare('SELECT revoked_at FROM console_sessions').get() as { revoked_at: number | null }).revoked_at).not.toBeNull();
      // The old secret is dead even if someone kept it.
      const replay = await api(t.url, 'GET', '/api/approvals/pending', { headers: { cookie: `toolgate_session=${cookie!.value}` } });
      expect(replay.status).toBe(401);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('shows a request made over HTTP within a second without a reload, and approving it with a reason gives the waiting caller its result', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      expect(await page.locator('table.queue tbody tr').count()).toBe(0);
      const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'notes.txt', content: 'hello' } } });
      const row = page.locator('table.queue tbody tr', { hasText: 'write_file' });
      await row.waitFor({ timeout: 1000 });
      expect(await row.textContent()).toMatch(/write_file.*HIGH.*dev_user.*developer.*ago.*left.*0 of 1.*notes\.txt/s);
      expect(await page.title()).toBe('(1) toolgate console');

      await row.locator('a.tool').click();
      await page.getByRole('heading', { name: /write_file/ }).waitFor();
      await page.getByLabel(/^Reason/).fill('expected: the agent is writing notes');
      await page.getByRole('button', { name: 'Approve', exact: true }).click();
      const res = await call;
      expect(res.status).toBe(200);
      expect(res.body.result.content[0].text).toBe('wrote 5 bytes to notes.txt');
      expect(res.body.approval.decisions).toMatchObject([{ approver: 'admin_user', verdict: 'approve', reason: 'expected: the agent is writing notes' }]);
      await expect.poll(() => page.getByRole('status').allTextContents()).toContainEqual(expect.stringContaining('approved by admin_user'));
      await page.getByRole('link', { name: '← Queue' }).click();
      await expect.poll(() => page.locator('table.queue tbody tr').count()).toBe(0);
      expect(await page.title()).toBe('toolgate console');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('rejects with a reason, which the caller receives; refuses a reject without one', async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const call = api(t.url, 'POST', '/tools/execute_bash/call', { token: t.tokens.dev, body: { arguments: { command: 'rm -rf /' } } });
      await page.locator('table.queue tbody tr', { hasText: 'execute_bash' }).locator('a.tool').click();
      await page.getByRole('button', { name: 'Reject', exact: true }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('A reason is required');
      await page.getByRole('button', { name: 'Arguments look wrong or unsafe' }).click();
      await page.getByRole('button', { name: 'Reject', exact: true }).click();
      const res = await call;
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('approval_rejected');
      expect(res.body.approval.decisions).toMatchObject([{ approver: 'admin_user', verdict: 'reject', reason: 'Arguments look wrong or unsafe' }]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('refuses to let an approver decide their own request, saying so plainly (four-eyes)', async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const own = await asyncRequest(t, t.tokens.admin, 'git_commit', { message: 'mine' });
      await page.locator(`tr[data-id="${own.id}"] a.tool`).click();
      await page.getByLabel(/^Reason/).fill('looks fine to me');
      await page.getByRole('button', { name: 'Approve', exact: true }).click();
      const alert = page.locator('.decide [role="alert"]');
      await alert.waitFor();
      expect(await alert.getAttribute('data-code')).toBe('self_approval');
      expect(await alert.textContent()).toContain('You cannot decide your own request (four-eyes rule).');
      expect((await api(t.url, 'GET', `/api/approvals/${own.id}`, { token: t.tokens.admin })).body.approval.status).toBe('pending');
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('takes a request settled elsewhere out of the queue at once, saying who settled it and how', async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const a = await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'a', content: 'a' });
      await page.locator(`tr[data-id="${a.id}"]`).waitFor();
      const decided = await api(t.url, 'POST', `/api/approvals/${a.id}/reject`, { token: t.tokens.admin2, body: { reason: 'decided in the terminal' } });
      expect(decided.status).toBe(200);
      await page.locator(`tr[data-id="${a.id}"]`).waitFor({ state: 'detached' });
      const line = page.locator(`.settled li[data-id="${a.id}"]`);
      expect(await line.getAttribute('data-status')).toBe('rejected');
      expect(await line.textContent()).toContain('rejected by admin_two: “decided in the terminal”');
    } finally {
      await context.close();
      await t.close();
    }
  });

  it("ends a disabled approver's session at once: the socket closes, the page asks to sign in again, and the cookie gets 401", async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin2);
      const [cookie] = await context.cookies();
      await t.gateway.users.disable('test', 'admin_two');
      await page.getByLabel('Approver token').waitFor({ timeout: 2000 });
      expect(await page.locator('.notice').textContent()).toMatch(/Signed out: .*(withdrawn|disabled|ended)/);
      const after = await api(t.url, 'GET', '/api/approvals/pending', { headers: { cookie: `toolgate_session=${cookie!.value}` } });
      expect(after.status).toBe(401);
      expect(t.gateway.hub.online()).toBe(0);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('shows hostile arguments and reasons as inert text: no markup runs, bidi overrides are shown escaped, huge values are folded', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const hostile = {
        path: '<img src=x onerror="window.__pwned=1">',
        content: `<script>window.__pwned=2</script>\u202Etxt.exe${'A'.repeat(200_000)}`,
      };
      const a = await asyncRequest(t, t.tokens.dev, 'write_file', hostile);
      const row = page.locator(`tr[data-id="${a.id}"]`);
      await row.waitFor();
      expect(await row.locator('td.args').textContent()).toContain('<img src=x onerror=\\"window.__pwned=1\\">');
      await row.locator('a.tool').click();
      const json = page.getByRole('group', { name: 'arguments' });
      await json.waitFor();
      expect(await json.textContent()).toContain('"<img src=x onerror="window.__pwned=1">"');
      expect(await json.locator('.esc').first().textContent()).toBe('\\u202e');
      expect(await json.textContent()).toMatch(/more characters hidden \(200041 in all\)/);
      expect(await page.locator('img, script:not([src]):not([type="importmap"])').count()).toBe(0);

      await page.getByLabel(/^Reason/).fill('<b onmouseover=alert(1)>no</b> \u202Edetacer');
      await page.getByRole('button', { name: 'Reject', exact: true }).click();
      const note = page.getByRole('status').filter({ hasText: 'rejected by admin_user' });
      await note.waitFor();
      expect(await note.textContent()).toContain('<b onmouseover=alert(1)>no</b> \\u202edetacer');
      expect(await page.locator('b[onmouseover]').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

      // The gateway refuses such tool names; one written straight into the database is still shown as text.
      const forged = '<img src=x onerror="window.__pwned=3">\u202Eexe.txt';
      t.sql()
        .prepare(
          `INSERT INTO approval_requests (id, short_id, tool, arguments, requester_id, requester_role, token_id, sensitivity, mode, status, required_approvals, requested_at, expires_at)
           SELECT 'ffffffff-0000-4000-8000-000000000000', 'ffffffff', ?, '{}', requester_id, requester_role, token_id, sensitivity, mode, 'pending', required_approvals, requested_at + 1, expires_at FROM approval_requests WHERE id = ?`,
        )
        .run(forged, a.id);
      await page.evaluate(() => (location.hash = '#/'));
      await page.reload();
      const forgedRow = page.locator('tr[data-id="ffffffff-0000-4000-8000-000000000000"]');
      await forgedRow.waitFor();
      expect(await forgedRow.locator('a.tool').textContent()).toBe('<img src=x onerror="window.__pwned=3">\\u202eexe.txt');
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('shows the reconnecting banner when the gateway goes away, then reconnects and resyncs the queue', async () => {
    const dir = tempDir();
    let t = await startTestGateway({ dir: dir.path, env: { APPROVAL_POLLING_INTERVAL: '0.1' } });
    const { page, context } = await openPage(browser);
    try {
      const tokens = t.tokens;
      await signIn(page, t.url, tokens.admin);
      const before = await asyncRequest(t, tokens.dev, 'write_file', { path: 'before', content: '' });
      await page.locator(`tr[data-id="${before.id}"]`).waitFor();
      const port = t.gateway.port;
      await t.gateway.close();
      await page.locator('[data-connection="reconnecting"]').waitFor();
      expect(await page.locator('.banner').textContent()).toContain('Reconnecting');
      t = await startTestGateway({ dir: dir.path, env: { APPROVAL_POLLING_INTERVAL: '0.1', PORT: String(port) } });
      const during = await asyncRequest(t, tokens.dev, "write_file", { path: "during", content: "made while the page was away" });
      await page.locator('[data-connection="connected"]').waitFor({ timeout: 20_000 });
      await page.locator(`tr[data-id="${during.id}"]`).waitFor();
      expect(await page.locator(`tr[data-id="${before.id}"]`).count()).toBe(1);
    } finally {
      await context.close();
      await t.gateway.close();
      dir.remove();
    }
  });

  it('gives a cross-site page no use of the session cookie: its decision and its socket are refused', async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser);
    let evil: Server | undefined;
    try {
      await signIn(page, t.url, t.tokens.admin);
      const a = await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'target', content: 'x' });
      // Another port on 127.0.0.1 is the same *site*, so SameSite lets the cookie go along: the Origin check is what stops it.
      evil = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>evil</title>'));
      await new Promise<void>((resolve) => evil!.listen(0, '127.0.0.1', resolve));
      await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      const outcome = await page.evaluate(
        async ({ url, id }) => {
          const attempts: string[] = [];
          for (const init of [
            { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{"reason":"csrf"}' },
            { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"reason":"csrf"}' },
          ] as RequestInit[]) {
            try {
              const res = await fetch(`${url}/api/approvals/${id}/approve`, init);
              attempts.push(String(res.status));
            } catch (err) {
              attempts.push(`failed: ${(err as Error).message}`);
            }
          }
          const socket = await new Promise<string>((resolve) => {
            const ws = new WebSocket(`${url.replace('http', 'ws')}/ws/approvals`);
            ws.onmessage = (e) => resolve(`message: ${String(e.data).slice(0, 40)}`);
            ws.onclose = (e) => resolve(`closed ${e.code}`);
          });
          return { attempts, socket };
        },
        { url: t.url, id: a.id },
      );
      expect(outcome.socket).not.toMatch(/hello/);
      const now = await api(t.url, 'GET', `/api/approvals/${a.id}`, { token: t.tokens.admin });
      expect(now.body.approval.status).toBe('pending');
      expect(now.body.approval.decisions).toEqual([]);
      expect(await eventually(() => t.gateway.hub.online() === 0 || t.gateway.hub.online() === 0)).toBe(true);
    } finally {
      await context.close();
      evil?.close();
      await t.close();
    }
  });
});
