import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, type TestGateway } from '../helpers.js';
import { asyncRequest, consoleGateway, describeInBrowser, launch, openPage, signIn } from './kit.js';

/**
 * Standing approvals from the console: asked for beside Approve, shown as the gateway reads them
 * before the approver confirms, and then honoured by the real tool-call API.
 */

/** A call that waits for its answer, as an agent's would; one a grant covers is answered at once. */
const waitingCall = (t: TestGateway, args: Record<string, unknown>) =>
  api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: args }, signal: AbortSignal.timeout(15_000) });

/** Opens the request, writes a reason and ticks "Also allow this call again". */
async function startGrant(page: Page, id: string, reason = 'routine report') {
  await page.locator(`tr[data-id="${id}"] a.tool`).click();
  await page.getByLabel(/^Reason/).fill(reason);
  await page.getByLabel('Also allow this call again').check();
}

const reviewButton = (page: Page) => page.getByRole('button', { name: 'Approve and allow again…' });
const confirmButton = (page: Page) => page.getByRole('button', { name: 'Confirm: approve and allow again' });

describeInBrowser('web console: standing approvals', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('approves with a grant of 2 calls for exactly these arguments, shown before it is confirmed; the next identical calls run at once, others wait', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const args = { path: '/srv/app/notes.txt', content: 'hello' };
      const first = await asyncRequest(t, t.tokens.dev, 'write_file', args);
      await startGrant(page, first.id);
      await page.getByLabel('At most this many calls').fill('2');
      await reviewButton(page).click();

      const summary = page.locator('.grant-review .grant-summary');
      await summary.waitFor();
      expect(await summary.getAttribute('data-scope')).toBe('exact');
      expect(await summary.locator('.grant-who').textContent()).toBe('requester: dev_user only');
      expect(await summary.locator('.grant-tool').textContent()).toBe('tool: write_file only');
      expect(await summary.locator('.grant-scope-text').textContent()).toBe('arguments: exactly these arguments:path = "/srv/app/notes.txt"content = "hello"');
      expect(await summary.locator('.grant-uses').textContent()).toBe('at most 2 calls, whichever ends first');
      expect(await summary.locator('.grant-time').textContent()).toMatch(/^for 1 h \(the longest this gateway allows\), until about /);
      // Nothing is decided until the approver confirms what they read.
      expect((await api(t.url, 'GET', `/api/approvals/${first.id}`, { token: t.tokens.admin })).body.approval).toMatchObject({ status: 'pending', decisions: [] });
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Confirm: approve and allow again');
      await confirmButton(page).click();

      const made = page.locator('.grant-outcome');
      await made.waitFor();
      const { grants } = (await api(t.url, 'GET', '/api/grants', { token: t.tokens.admin })).body;
      expect(grants).toHaveLength(1);
      expect(grants[0]).toMatchObject({ requestId: first.id, tool: 'write_file', requester: 'dev_user', scope: 'exact', maxUses: 2, usesLeft: 2, approvers: ['admin_user'] });
      expect(await made.textContent()).toContain(`Standing approval ${grants[0].id.slice(0, 8)} made: write_file for dev_user`);

      // The same call (the same arguments in another order) runs without waiting for anyone, twice.
      for (const n of [1, 2]) {
        const ran = await waitingCall(t, { content: 'hello', path: '/srv/app/notes.txt' });
        expect(ran.status, `call ${n}`).toBe(200);
        expect(ran.body.approval).toMatchObject({ status: 'approved', grantId: grants[0].id, decisions: [], execution: { status: 'succeeded' } });
        expect(ran.body.result.content[0].text).toBe('wrote 5 bytes to /srv/app/notes.txt');
      }
      // The console shows such a request as allowed by the grant, with no approver.
      const ranLast = (await api(t.url, 'GET', '/api/approvals?status=approved', { token: t.tokens.admin })).body.approvals[0];
      await page.goto(`${t.url}/console#/r/${ranLast.id}`);
      await page.locator('dd.granted-by').waitFor();
      expect(await page.locator('dd.granted-by').textContent()).toBe(`standing approval ${grants[0].id.slice(0, 8)}, without asking an approver`);
      // Other arguments wait for an approver; so does a third identical call.
      const other = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { ...args, content: 'changed' } }, headers: { prefer: 'respond-async' } });
      expect([other.status, other.body.approval.status, other.body.approval.grantId]).toEqual([202, 'pending', null]);
      const third = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: args }, headers: { prefer: 'respond-async' } });
      expect([third.status, third.body.approval.status]).toEqual([202, 'pending']);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('broadens a grant with a glob on one argument: a matching path runs at once, a non-matching one waits', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const first = await asyncRequest(t, t.tokens.dev, 'write_file', { path: '/srv/app/a.log', content: 'x' });
      await startGrant(page, first.id, 'log rotation');
      await page.getByLabel('Allow again for').fill('10m');
      await page.getByLabel('Constrain named arguments').check();
      await reviewButton(page).click();
      // Asked to constrain with no pattern given: said so, nothing sent.
      expect(await page.locator('.decide [role="alert"]').getAttribute('data-code')).toBe('grant_incomplete');
      await page.getByLabel('pattern for argument path').fill('/srv/*/*.log');
      await reviewButton(page).click();

      const summary = page.locator('.grant-review .grant-summary');
      await summary.waitFor();
      expect(await summary.getAttribute('data-scope')).toBe('match');
      expect(await summary.locator('li[data-key="path"]').textContent()).toBe('path matching the glob “/srv/*/*.log” (* any characters, / included; no “..” segments)');
      expect(await summary.locator('li[data-key="content"]').textContent()).toBe('content = "x"');
      expect(await summary.locator('.grant-time').textContent()).toMatch(/^for 10 min, until about /);
      expect(await summary.locator('.grant-uses').textContent()).toBe('at most 100 calls (the most this gateway allows), whichever ends first');
      await confirmButton(page).click();
      await page.locator('.grant-outcome').waitFor();
      const [grant] = (await api(t.url, 'GET', '/api/grants', { token: t.tokens.admin })).body.grants;
      expect(grant).toMatchObject({ scope: 'match', match: { path: { kind: 'glob', value: '/srv/*/*.log' } } });

      const covered = await waitingCall(t, { path: '/srv/web/b.log', content: 'x' });
      expect(covered.status).toBe(200);
      expect(covered.body.approval).toMatchObject({ status: 'approved', grantId: grant.id });
      for (const args of [
        { path: '/srv/web/b.txt', content: 'x' },
        { path: '/srv/web/../../etc/b.log', content: 'x' },
        { path: '/srv/web/b.log', content: 'other' },
      ]) {
        const waits = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: args }, headers: { prefer: 'respond-async' } });
        expect([waits.status, waits.body.approval.status], JSON.stringify(args)).toEqual([202, 'pending']);
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('shows requester-supplied bidi, zero-width and control characters escaped in the grant summary', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const first = await asyncRequest(t, t.tokens.dev, 'write_file', { path: '/srv/app/\u202Egol.exe', content: 'ok\u200B\u2066\u0007', 'tag\u202Egol': 'v' });
      await startGrant(page, first.id);
      await page.getByLabel('At most this many calls').fill('1');
      await page.getByLabel('Constrain named arguments').check();
      await page.getByLabel('pattern for argument content').fill('ok*');
      await reviewButton(page).click();
      const summary = page.locator('.grant-review .grant-summary');
      await summary.waitFor();
      const text = (await summary.textContent())!;
      expect(text).toContain('path = "/srv/app/\\u202egol.exe"');
      expect(text).toContain('content matching the glob “ok*”');
      expect(text).not.toMatch(/[\u202A-\u202E\u2066-\u2069\u200B\u0000-\u001F]/);
      expect(await summary.locator('li[data-key="path"] .esc').allTextContents()).toEqual(['\\u202e']);
      await page.getByRole('button', { name: 'Back' }).click();

      // Exact arguments: the control characters of the value are shown escaped too.
      await page.getByLabel('Exactly these arguments').check();
      await reviewButton(page).click();
      await summary.waitFor();
      expect(await summary.locator('li[data-key="content"]').textContent()).toBe('content = "ok\\u200b\\u2066\\u0007"');
      expect(await summary.locator('li[data-key="content"] .esc').allTextContents()).toEqual(['\\u200b', '\\u2066']);
      // So are argument names: the requester chose them too.
      expect(await summary.locator('li[data-key="tag\u202Egol"]').textContent()).toBe('tag\\u202egol = "v"');
      expect(await summary.textContent()).not.toMatch(/[\u202A-\u202E\u2066-\u2069\u200B]/);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('shows the gateway refusing a grant over its cap, deciding nothing and making no grant; CRITICAL tools offer none', async () => {
    const t = await consoleGateway({ GRANT_MAX_USES_HIGH: '3' });
    const { page, context, problems } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const first = await asyncRequest(t, t.tokens.dev, 'write_file', { path: '/srv/app/x', content: 'x' });
      await startGrant(page, first.id);
      expect(await page.locator('fieldset.grant .hint').first().textContent()).toContain('at most 1 h and 3 calls for HIGH tools');
      await page.getByLabel('At most this many calls').fill('50');
      await reviewButton(page).click();
      const alert = page.locator('.decide [role="alert"]');
      await alert.waitFor();
      expect(await alert.getAttribute('data-code')).toBe('grant_not_allowed');
      expect(await alert.textContent()).toBe(
        'The gateway will not grant this standing approval; nothing was decided. grant_not_allowed: a HIGH grant may allow at most 3 calls (GRANT_MAX_USES_HIGH)',
      );
      expect(await page.locator('.grant-review').count()).toBe(0);
      expect((await api(t.url, 'GET', '/api/grants?all=true', { token: t.tokens.admin })).body.count).toBe(0);
      expect((await api(t.url, 'GET', `/api/approvals/${first.id}`, { token: t.tokens.admin })).body.approval).toMatchObject({ status: 'pending', decisions: [] });

      // The operator has not made CRITICAL tools eligible: the control says so and cannot be ticked.
      const critical = await asyncRequest(t, t.tokens.dev, 'execute_bash', { command: 'uptime' });
      await page.goto(`${t.url}/console#/r/${critical.id}`);
      await page.locator('[data-ineligible="true"]').waitFor();
      expect(await page.getByLabel('Also allow this call again').isDisabled()).toBe(true);
      expect(await page.locator('[data-ineligible="true"]').textContent()).toContain('off for CRITICAL tools on this gateway');
      expect(await page.getByRole('button', { name: 'Approve', exact: true }).isEnabled()).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('under a quorum, says the grant waits for it, and makes it with the narrowest terms once the second approver also asks', async () => {
    const t = await consoleGateway({ APPROVAL_QUORUM_HIGH: '2' });
    const one = await openPage(browser);
    const two = await openPage(browser);
    try {
      await signIn(one.page, t.url, t.tokens.admin);
      await signIn(two.page, t.url, t.tokens.admin2);
      const args = { path: '/srv/app/q', content: 'quorum' };
      const first = await asyncRequest(t, t.tokens.dev, 'write_file', args);
      for (const { page } of [one, two]) await page.locator(`tr[data-id="${first.id}"]`).waitFor();

      await startGrant(one.page, first.id, 'first of two');
      await one.page.getByLabel('At most this many calls').fill('2');
      await reviewButton(one.page).click();
      expect(await one.page.locator('.quorum-note').textContent()).toMatch(/^This request needs 2 approvals \(0 so far; yours would be approval 1\)\. The standing approval takes effect only when the quorum is reached, and only if every approval that counts asks for one\./);
      await confirmButton(one.page).click();
      await one.page.locator('.grant-outcome').waitFor();
      expect(await one.page.locator('.grant-outcome').textContent()).toContain('it takes effect only when the quorum of 2 is reached');
      expect((await api(t.url, 'GET', '/api/grants?all=true', { token: t.tokens.admin })).body.count).toBe(0);

      await startGrant(two.page, first.id, 'second of two');
      await two.page.getByLabel('At most this many calls').fill('5');
      await reviewButton(two.page).click();
      expect(await two.page.locator('.quorum-note').textContent()).toMatch(/^Yours completes the quorum of 2\. The standing approval is made only if the earlier approval also asked for one\./);
      await confirmButton(two.page).click();
      await two.page.locator('.grant-outcome').waitFor();
      const [grant] = (await api(t.url, 'GET', '/api/grants', { token: t.tokens.admin })).body.grants;
      expect(grant).toMatchObject({ maxUses: 2, approvers: ['admin_user', 'admin_two'] });
      expect(await two.page.locator('.grant-outcome').textContent()).toContain(`Standing approval ${grant.id.slice(0, 8)} made`);
      const ran = await waitingCall(t, args);
      expect([ran.status, ran.body.approval.grantId]).toEqual([200, grant.id]);
    } finally {
      await one.context.close();
      await two.context.close();
      await t.close();
    }
  });

  it('lists standing approvals with what they cover, and revokes one at once', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      const args = { path: '/srv/app/\u202Egol.exe', content: 'r' };
      const first = await asyncRequest(t, t.tokens.dev, 'write_file', args);
      const approved = await api(t.url, 'POST', `/api/approvals/${first.id}/approve`, { token: t.tokens.admin2, body: { reason: 'ok', grant: { times: 3, for: '30m' } } });
      const grant = approved.body.grant;
      expect((await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: args }, headers: { prefer: 'respond-async' } })).body.approval.grantId).toBe(grant.id);

      await signIn(page, t.url, t.tokens.admin);
      await page.getByRole('link', { name: 'Standing approvals' }).click();
      const row = page.locator(`table.grants tr[data-id="${grant.id}"]`);
      await row.waitFor();
      expect(await row.getAttribute('data-state')).toBe('active');
      expect(await row.locator('td.covers').textContent()).toBe('exactly these arguments{"content":"r","path":"/srv/app/\\u202egol.exe"}');
      expect(await row.textContent()).toContain('2 of 3 calls');
      expect(await row.textContent()).toContain('admin_two');

      await row.getByLabel(`reason to revoke ${grant.id.slice(0, 8)}`).fill('task finished');
      await row.getByRole('button', { name: 'Revoke' }).click();
      await expect.poll(() => page.getByRole('status').allTextContents()).toContainEqual(`Standing approval ${grant.id.slice(0, 8)} revoked: no call it covered runs from now on.`);
      await row.waitFor({ state: 'detached' });
      const after = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: args }, headers: { prefer: 'respond-async' } });
      expect([after.status, after.body.approval.status]).toEqual([202, 'pending']);

      await page.getByLabel('Include ended ones').check();
      const ended = page.locator(`table.grants tr[data-id="${grant.id}"]`);
      await ended.waitFor();
      expect(await ended.getAttribute('data-state')).toBe('revoked');
      expect(await ended.textContent()).toContain('revoked by admin_user: “task finished”');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });
});
