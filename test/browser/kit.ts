/**
 * The browser tier's kit: Chromium from the system's packages (Debian's `chromium`), driven by
 * playwright-core, against a real gateway on 127.0.0.1:0. Without Chromium the suites skip and
 * say so; with CI=1 they fail instead, so CI never passes by skipping.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { describe } from 'vitest';
import { api, startTestGateway, type TestGateway } from '../helpers.js';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);

export const chromiumPath = CANDIDATES.find((p) => existsSync(p));

/** `describe`, or a plain skip (failing under CI=1) when there is no Chromium on this machine. */
export function describeInBrowser(name: string, body: () => void) {
  if (chromiumPath) return describe(name, body);
  if (process.env.CI) throw new Error(`CI=1 and no Chromium found (looked at ${CANDIDATES.join(', ')}): install it with apt-get install chromium`);
  console.warn(`SKIPPED browser suite "${name}": no Chromium found (looked at ${CANDIDATES.join(', ')}); install Debian's chromium or set CHROMIUM_PATH`);
  return describe.skip(name, body);
}

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath!, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A page that records every console message and CSP violation, for tests that assert there were none. */
export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and `securitypolicyviolation` events seen so far. */
  problems: string[];
}

export async function openPage(browser: Browser, options: { viewport?: { width: number; height: number } } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[13]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.exposeFunction('__cspViolation', (text: string) => problems.push(`CSP: ${text}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { __cspViolation(t: string): void }).__cspViolation(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return { page, context, problems };
}

/** Signs in through the form, as a person would, and waits for the live queue. */
export async function signIn(page: Page, url: string, token: string) {
  await page.goto(`${url}/console`);
  await page.getByLabel('Approver token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-connection="connected"]').waitFor();
}

/** A gateway for browser tests: a second approver (so four-eyes and quorum can be shown), and short polling. */
export async function consoleGateway(env: Record<string, string> = {}): Promise<TestGateway & { tokens: TestGateway['tokens'] & { admin2: string } }> {
  const t = await startTestGateway({ env: { APPROVAL_POLLING_INTERVAL: '0.1', ...env } });
  const admin2 = await t.gateway.users.add('test', 'admin_two', 'admin');
  return Object.assign(t, { tokens: { ...t.tokens, admin2 } });
}

/** A request made over HTTP in async mode (the caller comes back later): its approval. */
export async function asyncRequest(t: TestGateway, token: string, tool: string, args: Record<string, unknown>) {
  const res = await api(t.url, 'POST', `/tools/${encodeURIComponent(tool)}/call`, { token, body: { arguments: args }, headers: { prefer: 'respond-async' } });
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.approval as { id: string; shortId: string };
}
