// @module-tag process
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { api, startApproveCli, startTestGateway, type TestGateway } from './helpers.js';
import { decideInAnotherProcess } from './other-process.js';

describe('toolgate approve (the real binary, piped stdin)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const cli = (server: string, token: string) => {
    const c = startApproveCli(server, token);
    cleanups.push(c.kill);
    return c;
  };

  it('prints a pushed request, approves it by short id from stdin, and the caller gets its 200', async () => {
    const t = await startTestGateway();
    cleanups.push(() => t.close());
    const approver = cli(t.url, t.tokens.admin);
    await approver.waitFor(/^connected ws:\/\/127\.0\.0\.1:\d+\/ws\/approvals as admin_user \(admin\); 0 pending$/);

    const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'notes.txt', content: 'hello' } } });
    const [, shortId] = await approver.waitFor(
      /^requested ([0-9a-f]{8})  write_file  HIGH  by dev_user \(developer\)  (?:5m00s|4m5\ds) left  \{"path":"notes.txt","content":"hello"\}$/,
    );
    approver.type(`a ${shortId} looks good`);

    const res = await call;
    expect(res.status).toBe(200);
    expect(res.body.result.content[0].text).toBe('wrote 5 bytes to notes.txt');
    expect(res.body.approval.decisions).toEqual([expect.objectContaining({ approver: 'admin_user', reason: 'looks good' })]);
    await approver.waitFor(new RegExp(`^ok ${shortId} approve recorded; now approved$`));
    await approver.waitFor(new RegExp(`^resolved ${shortId} approved write_file by admin_user: looks good$`));

    approver.type(`r ${shortId} changed my mind`);
    await approver.waitFor(new RegExp(`^error ${shortId} not_pending: `));
    approver.child.stdin.end();
    // A decision that got an error makes the exit code say so (issue 11), so scripts can trust it.
    expect(await approver.exited).toBe(1);
    expect(approver.stdout()).not.toMatch(/\x1b\[/);
  });

  it('works as a script: decisions piped in before it connects are sent once connected, and it exits 0 when they are answered', async () => {
    const t = await startTestGateway();
    cleanups.push(() => t.close());
    const queued = await api(t.url, 'POST', '/tools/write_file/call', {
      token: t.tokens.dev,
      body: { arguments: { path: 'q.txt', content: 'queued' } },
      headers: { prefer: 'respond-async' },
    });
    const shortId: string = queued.body.approval.shortId;
    const script = cli(t.url, t.tokens.admin);
    script.child.stdin.end(`a ${shortId} approved by a script\n`);
    expect(await script.exited).toBe(0);
    expect(script.lines()).toContain(`ok ${shortId} approve recorded; now approved`);
    const done = await api(t.url, 'GET', `/api/approvals/${shortId}?wait=10`, { token: t.tokens.dev });
    expect(done.body.approval).toMatchObject({ status: 'approved', decisions: [expect.objectContaining({ reason: 'approved by a script' })] });
  });

  it('exits 1 with a clear message when the token is refused', async () => {
    const t = await startTestGateway();
    cleanups.push(() => t.close());
    for (const token of [t.tokens.guest, 'tg_not_a_token']) {
      const refused = cli(t.url, token);
      expect(await refused.exited).toBe(1);
      expect(refused.stderr()).toMatch(token === t.tokens.guest ? /this token may not approve \(4403/ : /the token was refused \(4401/);
    }
  });

  it('reconnects after the gateway restarts on the same database and port, and lists the same pending requests', async () => {
    const first = await startTestGateway();
    const dir = first.dir;
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    let current: TestGateway = first;
    cleanups.push(() => current.gateway.close());
    const approver = cli(first.url, first.tokens.admin);
    await approver.waitFor(/^connected .* 0 pending$/);

    // An async request survives a restart; a held (wait) caller cannot, and is cancelled.
    const later = await api(first.url, 'POST', '/tools/write_file/call', {
      token: first.tokens.dev,
      body: { arguments: { path: 'later.txt', content: 'kept' } },
      headers: { prefer: 'respond-async' },
    });
    expect(later.status).toBe(202);
    const keptId: string = later.body.approval.shortId;
    const settledAway = await api(first.url, 'POST', '/tools/write_file/call', {
      token: first.tokens.dev,
      body: { arguments: { path: 'away.txt', content: 'decided while the approver is away' } },
      headers: { prefer: 'respond-async' },
    });
    const awayId: string = settledAway.body.approval.shortId;
    const held = api(first.url, 'POST', '/tools/git_commit/call', { token: first.tokens.admin, body: { arguments: { message: 'wip' } } });
    await approver.waitFor(new RegExp(`^requested ${keptId}  write_file `));
    await approver.waitFor(new RegExp(`^requested ${awayId}  write_file `));
    const [, heldId] = await approver.waitFor(/^requested ([0-9a-f]{8})  git_commit /);

    await first.gateway.close();
    expect((await held).status).toBe(503);
    await approver.waitFor(new RegExp(`^resolved ${heldId} cancelled git_commit gateway shutting down$`));
    const dropped = await approver.waitFor(/^disconnected ws:\/\/\S+ \(1001 gateway shutting down\); retrying in \d+\.\ds$/);

    // While no gateway runs, another process rejects one request in the file: the resync must notice.
    await decideInAnotherProcess(first.dbPath, 'reject', awayId, 'not while you were away');
    current = await startTestGateway({ dbPath: first.dbPath, env: { PORT: String(first.gateway.port) } });
    const from = approver.lines().indexOf(dropped[0]);
    await approver.waitFor(new RegExp(`^gone ${awayId} write_file: settled while disconnected`), from);
    await approver.waitFor(/^reconnected .* as admin_user \(admin\); 1 pending$/, from);
    await approver.waitFor(new RegExp(`^pending ${keptId}  write_file  HIGH  by dev_user \\(developer\\)  .* left  \\{"path":"later.txt","content":"kept"\\}$`), from);

    // The session works as before on the new connection: approve, and the async request runs.
    approver.type(`a ${keptId} approved after the restart`);
    await approver.waitFor(new RegExp(`^ok ${keptId} approve recorded; now approved$`), from);
    const done = await api(current.url, 'GET', `/api/approvals/${keptId}?wait=10`, { token: first.tokens.dev });
    expect(done.body.approval).toMatchObject({ status: 'approved', execution: { status: 'succeeded' } });
    approver.child.stdin.end();
    expect(await approver.exited).toBe(0);
  });
});
