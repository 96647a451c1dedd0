import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api, runCli } from '../helpers.js';
import { asyncRequest, consoleGateway, describeInBrowser, launch, openPage, signIn } from './kit.js';

describeInBrowser('web console: the approver at work', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('works from the keyboard: j/k move, a and r open the decision with the reason focused, Ctrl+Enter decides, / filters, x and one reason reject a batch', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      for (const path of ['one', 'two', 'three', 'four']) await asyncRequest(t, t.tokens.dev, 'write_file', { path, content: path });
      await expect.poll(() => page.locator('table.queue tbody tr').count()).toBe(4);
      // Oldest first, as the page lists them.
      const ids = await page.locator('table.queue tbody tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.id!));
      const selected = () => page.locator('table.queue tr.selected').getAttribute('data-id');
      expect(await selected()).toBe(ids[0]);
      await page.keyboard.press('j');
      await page.keyboard.press('j');
      expect(await selected()).toBe(ids[2]);
      await page.keyboard.press('k');
      expect(await selected()).toBe(ids[1]);

      await page.keyboard.press('a');
      await page.locator('form.decide[data-verdict="approve"]').waitFor();
      await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('reason');
      await page.keyboard.type('fine by keyboard');
      await page.keyboard.press('Control+Enter');
      await page.locator('table.queue').waitFor();
      await expect.poll(async () => (await api(t.url, 'GET', `/api/approvals/${ids[1]}`, { token: t.tokens.admin })).body.approval.status).toBe('approved');

      // The selection stays in place: on the next request in line.
      expect(await selected()).toBe(ids[2]);
      await page.keyboard.press('k');
      expect(await selected()).toBe(ids[0]);
      await page.keyboard.press('r');
      await page.locator('form.decide[data-verdict="reject"]').waitFor();
      await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('reason');
      await page.keyboard.type('not by keyboard');
      await page.keyboard.press('Control+Enter');
      await page.locator('table.queue').waitFor();
      await expect.poll(async () => (await api(t.url, 'GET', `/api/approvals/${ids[0]}`, { token: t.tokens.admin })).body.approval).toMatchObject({
        status: 'rejected',
        decisions: [{ verdict: 'reject', reason: 'not by keyboard' }],
      });

      await page.keyboard.press('/');
      await expect.poll(() => page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.type)).toBe('search');
      await page.keyboard.type('nobody-matches');
      await expect.poll(() => page.locator('table.queue tbody tr').count()).toBe(0);
      // Esc clears the filter and leaves the box, so the keys move through the queue again.
      await page.keyboard.press('Escape');
      await expect.poll(() => page.evaluate(() => document.activeElement?.tagName)).toBe('BODY');
      await expect.poll(() => page.locator('table.queue tbody tr').count()).toBe(2);

      await page.keyboard.press('x');
      await page.keyboard.press('j');
      await page.keyboard.press('x');
      await page.getByLabel('Reject 2 selected with one reason').fill('batch: wrong workspace');
      await page.getByRole('button', { name: 'Reject 2' }).click();
      await expect.poll(() => page.locator('table.queue tbody tr').count()).toBe(0);
      for (const id of [ids[2], ids[3]]) {
        expect((await api(t.url, 'GET', `/api/approvals/${id}`, { token: t.tokens.admin })).body.approval).toMatchObject({
          status: 'rejected',
          decisions: [{ reason: 'batch: wrong workspace' }],
        });
      }
      await page.keyboard.press('?');
      expect(await page.getByRole('dialog', { name: 'Keyboard' }).textContent()).toContain('approve');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('collects a quorum of two from two approvers in two browsers, showing progress to both and refusing a second vote', async () => {
    const t = await consoleGateway({ APPROVAL_QUORUM_HIGH: '2' });
    const one = await openPage(browser);
    const two = await openPage(browser);
    try {
      await signIn(one.page, t.url, t.tokens.admin);
      await signIn(two.page, t.url, t.tokens.admin2);
      const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'q', content: 'quorum' } } });
      for (const { page } of [one, two]) await expect.poll(() => page.locator('td.quorum').textContent()).toBe('0 of 2');
      await one.page.locator('a.tool').click();
      await one.page.getByLabel(/^Reason/).fill('first of two');
      await one.page.getByRole('button', { name: 'Approve', exact: true }).click();
      await expect.poll(() => one.page.getByRole('status').allTextContents()).toContainEqual(expect.stringContaining('1 of 2 approvals so far'));
      await expect.poll(() => two.page.locator('td.quorum').textContent()).toBe('1 of 2');
      await one.page.getByLabel(/^Reason/).fill('again');
      await one.page.getByRole('button', { name: 'Approve', exact: true }).click();
      await expect.poll(() => one.page.locator('.decide [role="alert"]').getAttribute('data-code')).toBe('already_decided');

      await two.page.locator('a.tool').click();
      expect(await two.page.locator('.decisions').textContent()).toContain('first of two');
      await two.page.getByLabel(/^Reason/).fill('second of two');
      await two.page.getByRole('button', { name: 'Approve', exact: true }).click();
      const res = await call;
      expect(res.status).toBe(200);
      expect(res.body.approval.decisions.map((d: { approver: string }) => d.approver)).toEqual(['admin_user', 'admin_two']);
    } finally {
      await one.context.close();
      await two.context.close();
      await t.close();
    }
  });

  it('shows a request that expires while it is open as expired, with no decision form left', async () => {
    const t = await consoleGateway({ APPROVAL_TIMEOUT: '3' });
    const { page, context } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const soon = await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'late', content: '' });
      await page.locator(`tr[data-id="${soon.id}"] a.tool`).click();
      await page.locator('dd.countdown').waitFor();
      await page.locator('dd[data-status="expired"]').waitFor({ timeout: 10_000 });
      expect(await page.locator('form.decide').count()).toBe(0);
      expect(await page.getByRole('status').allTextContents()).toContainEqual(expect.stringContaining('expired; nobody decided in time'));
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('takes a request rejected with the CLI out of the queue, saying who and why', async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser);
    try {
      await signIn(page, t.url, t.tokens.admin);
      const cli = await asyncRequest(t, t.tokens.dev, 'execute_bash', { command: 'date' });
      await page.locator(`tr[data-id="${cli.id}"]`).waitFor();
      const res = await runCli(['approvals', 'reject', cli.shortId, 'rejected from the terminal', '--server', t.url, '--token', t.tokens.admin2]);
      expect(res.status, res.stderr).toBe(0);
      await page.locator(`tr[data-id="${cli.id}"]`).waitFor({ state: 'detached' });
      expect(await page.locator(`.settled li[data-id="${cli.id}"]`).textContent()).toContain('rejected by admin_two: “rejected from the terminal”');
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('shows the history with filters, links each request to its audit events, and shows admins whether the audit chain verifies', async () => {
    const t = await consoleGateway();
    const { page, context, problems } = await openPage(browser);
    try {
      const a = await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'h1', content: '' });
      const b = await asyncRequest(t, t.tokens.dev, 'execute_bash', { command: 'ls' });
      await api(t.url, 'POST', `/api/approvals/${a.id}/approve`, { token: t.tokens.admin2, body: { reason: 'ok h1' } });
      await api(t.url, 'POST', `/api/approvals/${b.id}/reject`, { token: t.tokens.admin2, body: { reason: 'no ls' } });
      await signIn(page, t.url, t.tokens.admin);
      await page.getByRole('link', { name: 'History' }).click();
      await page.locator(`table.history tr[data-id="${a.id}"]`).waitFor();
      expect(await page.locator('table.history tbody tr').count()).toBe(2);
      await page.getByLabel('Verdict').selectOption('rejected');
      await page.getByRole('button', { name: 'Filter' }).click();
      await expect.poll(() => page.locator('table.history tbody tr').count()).toBe(1);
      const row = page.locator(`table.history tr[data-id="${b.id}"]`);
      expect(await row.textContent()).toContain('admin_two reject: “no ls”');
      expect(page.url()).toContain('#/history?status=rejected');

      await row.getByRole('link', { name: 'events' }).click();
      await page.locator('.verify[data-ok="true"]').waitFor();
      expect(await page.locator('.verify').textContent()).toContain('The audit log verifies.');
      const actions = await page.locator('table.audit tbody td:nth-child(4)').allTextContents();
      expect(actions).toEqual(['approval.rejected', 'approval.requested']);

      // An edited row breaks the chain, and the page says so.
      t.sql().prepare("UPDATE audit_events SET actor = 'mallory' WHERE request_id = ? AND action = 'approval.rejected'").run(b.id);
      await page.getByRole('button', { name: 'Verify again' }).click();
      await page.locator('.verify[data-ok="false"]').waitFor();
      expect(await page.locator('.verify').textContent()).toMatch(/does NOT verify.*broken at event \d+: hash does not match the event \(it was altered\)/s);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('announces a new request by notification and sound only once the approver opts in, and counts pending in the tab title', async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser);
    try {
      await context.grantPermissions(['notifications'], { origin: t.url });
      await page.addInitScript(() => {
        const shown: string[] = [];
        (window as unknown as { __shown: string[] }).__shown = shown;
        class FakeNotification {
          static permission = 'granted';
          static requestPermission = async () => 'granted';
          onclick: (() => void) | null = null;
          constructor(title: string, options: { body?: string }) {
            shown.push(`${title} | ${options.body ?? ''}`);
          }
        }
        (window as unknown as { Notification: unknown }).Notification = FakeNotification;
      });
      await signIn(page, t.url, t.tokens.admin);
      await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'quiet', content: '' });
      await expect.poll(() => page.title()).toBe('(1) toolgate console');
      expect(await page.evaluate(() => (window as unknown as { __shown: string[] }).__shown)).toEqual([]);

      await page.getByLabel('Notify').check();
      await page.getByLabel('Sound').check();
      await asyncRequest(t, t.tokens.dev, 'execute_bash', { command: 'whoami' });
      await expect.poll(() => page.evaluate(() => (window as unknown as { __shown: string[] }).__shown)).toEqual(['toolgate: CRITICAL execute_bash | from dev_user (developer)']);
      await expect.poll(() => page.locator('[aria-live="polite"].sr').textContent()).toBe('notification and sound for execute_bash');
      expect(await page.title()).toBe('(2) toolgate console');
      // The choice is remembered in this browser.
      await page.reload();
      await page.locator('[data-connection="connected"]').waitFor();
      expect(await page.getByLabel('Notify').isChecked()).toBe(true);
    } finally {
      await context.close();
      await t.close();
    }
  });

  it('fits a phone: no sideways scrolling, every request readable, the decision form reachable', async () => {
    const t = await consoleGateway();
    const { page, context } = await openPage(browser, { viewport: { width: 390, height: 844 } });
    try {
      await signIn(page, t.url, t.tokens.admin);
      const a = await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'phone', content: 'x'.repeat(3000) });
      await page.locator(`tr[data-id="${a.id}"]`).waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.locator(`tr[data-id="${a.id}"] a.tool`).click();
      await page.getByRole('button', { name: 'Approve', exact: true }).scrollIntoViewIfNeeded();
      expect(await page.getByRole('button', { name: 'Approve', exact: true }).isVisible()).toBe(true);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    } finally {
      await context.close();
      await t.close();
    }
  });
});
