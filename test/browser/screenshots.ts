/**
 * Makes the console's screenshots in docs/ (`npm run console:screenshots`): a real gateway, a few
 * requests from dev_user, admin_user signed in, in Chromium. Run it again after changing the page.
 */
import { join } from 'node:path';
import { ROOT, startTestGateway } from '../helpers.js';
import { asyncRequest, chromiumPath, launch, openPage, signIn } from './kit.js';

if (!chromiumPath) throw new Error('no Chromium: install Debian\'s chromium or set CHROMIUM_PATH');
const t = await startTestGateway({ env: { APPROVAL_QUORUM_CRITICAL: '2' } });
const browser = await launch();
try {
  const admin2 = await t.gateway.users.add('docs', 'alice', 'admin');
  const report = await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'reports/q3.md', content: '# Q3\n\nRevenue grew 12%.' });
  const bash = await asyncRequest(t, t.tokens.dev, 'execute_bash', { command: 'rm -rf ./build && npm run build', cwd: '/srv/app', env: { NODE_ENV: 'production' } });
  await asyncRequest(t, t.tokens.dev, 'write_file', { path: 'notes/\u202Etxt.exe', content: 'x'.repeat(3000) });
  await fetch(`${t.url}/api/approvals/${bash.id}/approve`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin2}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'build step of the release checklist' }),
  });
  const { page, context } = await openPage(browser, { viewport: { width: 1200, height: 640 } });
  await signIn(page, t.url, t.tokens.admin);
  await page.locator('table.queue tbody tr').nth(2).waitFor();
  await page.screenshot({ path: join(ROOT, 'docs/console-queue.png') });
  await page.locator(`tr[data-id="${bash.id}"] a.tool`).click();
  await page.locator('.decisions').waitFor();
  await page.getByRole('button', { name: 'Checked the arguments; safe to run' }).click();
  await page.screenshot({ path: join(ROOT, 'docs/console-request.png'), fullPage: true });
  await page.locator('a', { hasText: '← Queue' }).click();
  await page.locator(`tr[data-id="${report.id}"] a.tool`).click();
  await page.getByRole('button', { name: 'Expected as part of the current task' }).click();
  await page.getByLabel('Also allow this call again').check();
  await page.getByLabel('Allow again for').fill('30m');
  await page.getByLabel('At most this many calls').fill('10');
  await page.getByLabel('Constrain named arguments').check();
  await page.getByLabel('pattern for argument path').fill('reports/*.md');
  await page.getByRole('button', { name: 'Approve and allow again…' }).click();
  await page.locator('.grant-review').waitFor();
  await page.locator('form.decide').screenshot({ path: join(ROOT, 'docs/console-grant.png') });
  await context.close();
  console.log('wrote docs/console-queue.png, docs/console-request.png and docs/console-grant.png');
} finally {
  await browser.close();
  await t.close();
}
