// @module-tag process
import { afterEach, describe, expect, it } from 'vitest';
import { api, runCli, startApproveCli, startTestGateway, type CliChild, type TestGateway } from './helpers.js';

/** Standing approvals from the real CLI: the live session's `a … --for/--match`, the one-shot approve, grants list|revoke. */
describe('standing approvals from the CLI', () => {
  let t: TestGateway | undefined;
  let cli: CliChild | undefined;
  afterEach(async () => {
    await cli?.kill();
    cli = undefined;
    await t?.close();
    t = undefined;
  });

  const ask = async (args: Record<string, unknown>) =>
    (await api(t!.url, 'POST', '/tools/write_file/call', { token: t!.tokens.dev, body: { arguments: args }, headers: { prefer: 'respond-async' } })).body.approval;

  it('shows a broadened grant in the live session and applies it only once the approver confirms with y', async () => {
    t = await startTestGateway();
    cli = startApproveCli(t.url, t.tokens.admin);
    await cli.waitFor(/./);
    const first = await ask({ path: '/srv/app/a.txt', content: 'x' });
    await cli.waitFor(new RegExp(`requested .*${first.shortId}`));
    cli.type(`a ${first.shortId} routine deploys --for 15m --match path=/srv/app/**`);
    await cli.waitFor(/standing approval: .*for 15m.*path under "\/srv\/app\/".*every other argument exactly as approved/);
    await cli.waitFor(/type y to approve with it/);
    expect((await api(t.url, 'GET', `/api/approvals/${first.id}`, { token: t.tokens.admin })).body.approval.status).toBe('pending');
    cli.type('y');
    await cli.waitFor(/granted [0-9a-f]{8}: write_file for dev_user until .*path under/);
    expect(await ask({ path: '/srv/app/deep/b.txt', content: 'x' })).toMatchObject({ status: 'approved' });

    // Anything but y cancels: nothing is decided.
    const second = await ask({ path: '/etc/hosts', content: 'x' });
    await cli.waitFor(new RegExp(`requested .*${second.shortId}`));
    const from = cli.lines().length;
    cli.type(`a ${second.shortId} whatever --for 5m --any-args`);
    await cli.waitFor(/ANY arguments of this tool/, from);
    cli.type('n');
    await cli.waitFor(new RegExp(`cancelled: ${second.shortId} was not approved`), from);
    expect((await api(t.url, 'GET', `/api/approvals/${second.id}`, { token: t.tokens.admin })).body.approval.status).toBe('pending');
  });

  it('approves with a grant in one shot, lists it and revokes it', async () => {
    t = await startTestGateway();
    const env = { TOOLGATE_URL: t.url, TOOLGATE_TOKEN: t.tokens.admin };
    const first = await ask({ path: 'a', content: 'b' });
    const broad = await runCli(['approvals', 'approve', first.shortId, 'ok', '--for', '10m', '--any-args'], env);
    expect(broad.status).toBe(1);
    expect(broad.stderr).toContain('ANY arguments of this tool');
    expect(broad.stderr).toContain('re-run with --yes');
    const exact = await runCli(['approvals', 'approve', first.shortId, 'ok', '--times', '2'], env);
    expect(exact.status, exact.stderr).toBe(0);
    const id = /granted ([0-9a-f-]{36}) until .*2 calls: exactly these arguments/.exec(exact.stdout)![1]!;
    const listed = await runCli(['grants', 'list'], env);
    expect(listed.stdout).toMatch(new RegExp(`${id.slice(0, 8)}  active  write_file  for dev_user .* 2 left \\(0 used\\)  by admin_user  exactly these arguments`));
    const revoked = await runCli(['grants', 'revoke', id.slice(0, 8), 'not', 'needed'], env);
    expect([revoked.status, revoked.stdout.trim()]).toEqual([0, `${id.slice(0, 8)} revoked`]);
    expect(await ask({ path: 'a', content: 'b' })).toMatchObject({ status: 'pending' });
    const critical = (await api(t.url, 'POST', '/tools/execute_bash/call', { token: t.tokens.dev, body: { arguments: { command: 'ls' } }, headers: { prefer: 'respond-async' } })).body.approval;
    const refused = await runCli(['approvals', 'approve', critical.shortId, 'ok', '--for', '5m'], env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('grant_not_allowed');
  });
});
