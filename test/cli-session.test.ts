// @module-tag process
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { api, eventually, runCli, startApproveCli, startTestGateway, type CliChild, type TestGateway } from './helpers.js';

const HIGH_CALL = { arguments: { path: 'notes.txt', content: 'hello' } };

describe("the approver's session (the real binary)", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const cli = (server: string, token: string, options: Parameters<typeof startApproveCli>[2] = {}): CliChild => {
    const c = startApproveCli(server, token, options);
    cleanups.push(c.kill);
    return c;
  };
  const gateway = async (...args: Parameters<typeof startTestGateway>) => {
    const t = await startTestGateway(...args);
    cleanups.push(() => t.close());
    return t;
  };
  const asyncRequest = async (t: TestGateway) => {
    const res = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: HIGH_CALL, headers: { prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    return res.body.approval as { id: string; shortId: string };
  };

  it('piped: exits 1 when any decision it sent got an error, 0 when every one was accepted', async () => {
    const t = await gateway();
    const first = await asyncRequest(t);
    const second = await asyncRequest(t);
    const failing = cli(t.url, t.tokens.admin);
    failing.child.stdin.end(`a ${first.shortId} fine\nr deadbeef no such request\n`);
    expect(await failing.exited).toBe(1);
    expect(failing.lines()).toContain(`ok ${first.shortId} approve recorded; now approved`);
    expect(failing.stdout()).toMatch(/^error deadbeef not_found: /m);

    const passing = cli(t.url, t.tokens.admin);
    passing.child.stdin.end(`r ${second.shortId} not this one\n`);
    expect(await passing.exited).toBe(0);
  });

  it('show fetches the current state of the request, not what the session last saw', async () => {
    const t = await gateway();
    const approver = cli(t.url, t.tokens.admin);
    await approver.waitFor(/^connected .* 0 pending$/);
    const request = await asyncRequest(t);
    await approver.waitFor(new RegExp(`^requested ${request.shortId} `));
    approver.type(`a ${request.shortId} go`);
    await approver.waitFor(new RegExp(`^ok ${request.shortId} approve recorded; now approved$`));
    const done = await api(t.url, 'GET', `/api/approvals/${request.id}?wait=10`, { token: t.tokens.admin });
    expect(done.body.approval.execution.status).toBe('succeeded');
    const from = approver.lines().length;
    approver.type(`show ${request.shortId}`);
    await approver.waitFor(/^execution\s+succeeded$/, from);
  });

  it('short ids follow one rule everywhere: at least 8 characters, and an ambiguous prefix says ambiguous', { timeout: 60_000 }, async () => {
    const ids = ['abcdef01-0000-4000-8000-000000000001', 'abcdef01-0000-4000-8000-000000000002', '12345678-0000-4000-8000-000000000003'];
    let next = 0;
    const t = await gateway({ ids: { uuid: () => ids[next++]! } });
    for (let i = 0; i < 3; i++) await asyncRequest(t);
    const approver = cli(t.url, t.tokens.admin);
    await approver.waitFor(/^connected .* 3 pending$/);
    for (const line of ['a abcdef01 x', 'show abcdef01', 'a abcd x', 'a 1234 x', 'show 1234']) approver.type(line);
    const count = (pattern: RegExp) => approver.lines().filter((l) => pattern.test(l)).length;
    // `a` and `show` alike: the decision over the socket and the fetch over HTTP meet the same rule.
    await eventually(() => count(/^error abcdef01 ambiguous_id: "abcdef01" matches more than one request/) === 2, 15_000);
    await eventually(() => count(/^error 1234 not_found: "1234" is too short to find a request: give at least 8 characters/) === 2, 15_000);
    await approver.waitFor(/^error abcd not_found: "abcd" is too short to find a request: give at least 8 characters/);
    expect(approver.stdout()).not.toMatch(/no approval request matches/);
    expect((await t.gateway.store.approvals.countByStatus())).toEqual({ pending: 3 });

    const auth = ['--server', t.url, '--token', t.tokens.admin];
    const [ambiguous, short] = await Promise.all([runCli(['approvals', 'approve', 'abcdef01', 'x', ...auth]), runCli(['approvals', 'show', '1234', ...auth])]);
    expect(ambiguous).toMatchObject({ status: 1, stderr: expect.stringMatching(/^toolgate: ambiguous_id: /) });
    expect(short).toMatchObject({ status: 1, stderr: expect.stringMatching(/^toolgate: not_found: "1234" is too short .* at least 8 characters/) });
    const http = await api(t.url, 'POST', '/api/approvals/1234/approve', { token: t.tokens.admin, body: { reason: 'x' } });
    expect(http.status).toBe(404);
    expect(http.body.error.message).toMatch(/at least 8 characters/);
    // With 8 characters or more, dashed or not, it works the same everywhere.
    expect((await runCli(['approvals', 'approve', '12345678000040', 'x', ...auth])).status).toBe(0);
    approver.child.stdin.end();
  });

  it('keeps lines typed before it connects until the connection is made, then runs them', { timeout: 60_000 }, async () => {
    const first = await startTestGateway();
    cleanups.push(() => rmSync(first.dir, { recursive: true, force: true }));
    const request = await asyncRequest(first);
    const port = first.gateway.port;
    await first.gateway.close();

    const approver = cli(first.url, first.tokens.admin);
    approver.type('list');
    approver.type(`show ${request.shortId}`);
    approver.type(`a ${request.shortId} typed before the gateway was up`);
    await approver.waitFor(/^unreachable ws:\/\/\S+ \(ECONNREFUSED\); retrying in/);
    await eventually(() => /Is the gateway running at http:\/\/127\.0\.0\.1:\d+\?.*--server or TOOLGATE_URL/.test(approver.stderr()), 15_000);
    const second = await gateway({ dbPath: first.dbPath, dir: first.dir, env: { PORT: String(port) } });
    await approver.waitFor(/^connected .* 1 pending$/);
    await approver.waitFor(new RegExp(`^ok ${request.shortId} approve recorded; now approved$`));
    await approver.waitFor(/^1 pending$/);
    await approver.waitFor(/^status\s+(pending|approved)/);
    expect(approver.stdout()).not.toMatch(/not connected|error/);
    expect(approver.stderr().match(/Is the gateway running/g)).toHaveLength(1);
    const done = await api(second.url, 'GET', `/api/approvals/${request.id}?wait=10`, { token: first.tokens.dev });
    expect(done.body.approval).toMatchObject({ status: 'approved', decisions: [expect.objectContaining({ reason: 'typed before the gateway was up' })] });
    approver.child.stdin.end();
    expect(await approver.exited).toBe(0);
  });

  it('gives up with exit 1 when it never connects, after saying what to check', async () => {
    const t = await startTestGateway();
    await t.close();
    const started = Date.now();
    const approver = cli(t.url, 'tg_whatever', { args: ['approve', '--server', t.url, '--token', 'tg_whatever', '--connect-timeout', '2'] });
    expect(await approver.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    const stderr = approver.stderr();
    expect(stderr).toMatch(new RegExp(`^toolgate: cannot connect to ws://127\\.0\\.0\\.1:\\d+/ws/approvals \\(ECONNREFUSED\\)\\. Is the gateway running at ${t.url.replace(/\./g, '\\.')}\\? Point the CLI at it with --server or TOOLGATE_URL\\. Retrying for 2s\\.$`, 'm'));
    expect(stderr).toMatch(/^toolgate: gave up: no connection to ws:\/\/\S+ after 2s$/m);
  });

  it('keeps reconnecting after a drop for longer than the first-connection limit', { timeout: 60_000 }, async () => {
    const first = await startTestGateway();
    cleanups.push(() => rmSync(first.dir, { recursive: true, force: true }));
    const approver = cli(first.url, first.tokens.admin, { args: ['approve', '--server', first.url, '--token', first.tokens.admin, '--connect-timeout', '1'] });
    await approver.waitFor(/^connected .* 0 pending$/);
    const port = first.gateway.port;
    await first.gateway.close();
    await approver.waitFor(/^disconnected /);
    const droppedAt = Date.now();
    await eventually(() => Date.now() - droppedAt > 2500 && approver.lines().filter((l) => l.startsWith('disconnected ')).length >= 3, 15_000);
    expect(approver.child.exitCode).toBe(null);
    await gateway({ dbPath: first.dbPath, dir: first.dir, env: { PORT: String(port) } });
    await approver.waitFor(/^reconnected .* 0 pending$/, 0, 20_000);
    approver.child.stdin.end();
    expect(await approver.exited).toBe(0);
  });

  describe('at a terminal', () => {
    const prompt = /approve> /;
    /** What the terminal shows after the last prompt (cursor moves aside): nothing but the line's end. */
    const afterLastPrompt = (out: string) => {
      const shown = out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
      return shown.slice(shown.lastIndexOf('approve> ') + 'approve> '.length);
    };

    for (const [key, byte] of [
      ['Ctrl-D', '\x04'],
      ['Ctrl-C', '\x03'],
    ] as const) {
      it(`ends with a newline on ${key}, so the shell prompt starts on a line of its own`, async () => {
        const t = await gateway();
        const approver = cli(t.url, t.tokens.admin, { pty: true });
        await approver.waitFor(/connected .* 0 pending/);
        await eventually(() => prompt.test(approver.stdout()));
        approver.child.stdin.write(byte);
        expect(await approver.exited).toBe(0);
        expect(afterLastPrompt(approver.stdout())).toMatch(/^(\^[CD])?\r?\n$/);
      });
    }

    it('says once that a token is refused, with no prompt around it', async () => {
      const t = await gateway();
      const approver = cli(t.url, 'tg_not_a_token', { pty: true });
      expect(await approver.exited).toBe(1);
      const out = approver.stdout();
      expect(out).not.toMatch(prompt);
      expect(out).toMatch(/^toolgate: the token was refused \(4401: [^\n]+\)\r?\n$/);
    });
  });
});
