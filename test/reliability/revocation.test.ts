// @module-tag process
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/auth/tokens.js';
import { api, eventually, pendingApprovals, runCliSync, startTestGateway, tempDir, type TestGateway } from '../helpers.js';
import { decideInAnotherProcessSync } from '../other-process.js';
import { connectApprover, type Approver } from '../ws-client.js';

const POLLING_INTERVAL_S = 0.2;

describe('revoked power dies at once', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const gateway = async (options: Parameters<typeof startTestGateway>[0] = {}) => {
    const t = await startTestGateway({
      pingIntervalMs: 60_000,
      ...options,
      env: { APPROVAL_POLLING_INTERVAL: String(POLLING_INTERVAL_S), RATE_LIMIT_PER_MINUTE: '0', ...options.env },
    });
    cleanups.push(() => t.close());
    return t;
  };
  /**
   * The real CLI, run to completion while this process (and the gateway in it) stands still. The
   * gateway may afterwards close keep-alive connections that timed out meanwhile: `settle()` first.
   */
  const cli = (t: TestGateway, ...args: string[]) => {
    const res = runCliSync(args, { DATABASE_PATH: t.dbPath });
    expect(res.status, res.stderr).toBe(0);
    return res.stdout;
  };
  const settle = () => new Promise((r) => setTimeout(r, 100));
  const asyncCall = async (t: TestGateway, tool: string, args: Record<string, unknown>, auth: { token?: string; headers?: Record<string, string> }) => {
    const res = await api(t.url, 'POST', `/tools/${tool}/call`, { ...auth, body: { arguments: args }, headers: { prefer: 'respond-async', ...auth.headers } });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.approval as { id: string; shortId: string };
  };
  /** The approval as the API shows it, read in-process (no socket to race a keep-alive timeout). */
  const approvalAsAdmin = async (t: TestGateway, id: string) => t.gateway.approvals.views.view((await t.gateway.store.approvals.request(id))!);
  const auditOf = (t: TestGateway, action: string) =>
    t.query<{ actor: string; requestId: string | null; details: string }>(
      'select actor, action, request_id as "requestId", details from audit_events where action = ? order by seq',
      action,
    );
  const approver = async (t: TestGateway, token: string) => {
    const a = await connectApprover(t.wsUrl, token);
    cleanups.push(() => a.close());
    await a.next((f) => f.type === 'hello');
    return a;
  };
  /** A gateway whose fixture `count` tool appends its tag to a file: what ran, and how often. */
  const gatewayWithCounter = async () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const file = join(dir.path, 'counter.txt');
    const t = await gateway({ dir: dir.path, fixtureEnv: { FIXTURE_COUNTER_FILE: file } });
    return { t, counted: () => (existsSync(file) ? readFileSync(file, 'utf8') : '') };
  };

  it('`users disable` cancels the pending requests of the requester at once ("requester disabled"): the held caller gets an error, other users\' requests stay', async () => {
    const t = await gateway();
    const held = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'held', content: 'x' } } });
    const queued = await asyncCall(t, 'write_file', { path: 'queued', content: 'y' }, { token: t.tokens.dev });
    const others = await asyncCall(t, 'git_commit', { message: 'admin work' }, { token: t.tokens.admin });
    await pendingApprovals(t, 3);

    expect(cli(t, 'users', 'disable', 'dev_user')).toContain('cancelled 2 pending requests');

    const res = await held;
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('approval_cancelled');
    expect(res.body.approval).toMatchObject({ status: 'cancelled', statusReason: 'requester disabled' });
    expect(res.body.result).toBeUndefined();
    expect(await approvalAsAdmin(t, queued.id)).toMatchObject({ status: 'cancelled', statusReason: 'requester disabled', execution: { status: 'none' } });
    expect(await approvalAsAdmin(t, others.id)).toMatchObject({ status: 'pending' });
    const cancelled = await auditOf(t, 'approval.cancelled');
    expect(cancelled).toHaveLength(2);
    for (const e of cancelled) {
      expect(e.actor).toMatch(/^cli:/);
      expect(JSON.parse(e.details)).toEqual({ reason: 'requester disabled' });
    }
    expect(runCliSync(['audit', 'verify'], { DATABASE_PATH: t.dbPath }).status).toBe(0);
  }, 60_000);

  it('records the token that made each request; `users token --revoke-others` cancels exactly that token\'s pending requests ("token revoked")', async () => {
    const t = await gateway({ env: { TRUST_USER_HEADER: 'true' } });
    const byToken = await asyncCall(t, 'write_file', { path: 'a', content: 'by token' }, { token: t.tokens.dev });
    const byHeader = await asyncCall(t, 'write_file', { path: 'b', content: 'by header' }, { headers: { 'x-user-id': 'dev_user' } });
    const tokenId = (await t.query<{ id: number }>('select id from api_tokens where token_hash = ?', hashToken(t.tokens.dev)))[0]!.id;
    expect((await t.gateway.store.approvals.request(byToken.id))?.tokenId).toBe(tokenId);
    expect((await t.gateway.store.approvals.request(byHeader.id))?.tokenId).toBeNull();

    const fresh = cli(t, 'users', 'token', 'dev_user', '--revoke-others').trim().split('\n').at(-1)!;
    await settle();

    await eventually(async () => (await approvalAsAdmin(t, byToken.id)).status === 'cancelled');
    expect(await approvalAsAdmin(t, byToken.id)).toMatchObject({ statusReason: 'token revoked' });
    expect(await approvalAsAdmin(t, byHeader.id)).toMatchObject({ status: 'pending' });
    expect((await api(t.url, 'GET', '/tools', { token: t.tokens.dev })).status).toBe(401);
    const later = await asyncCall(t, 'write_file', { path: 'c', content: 'new token' }, { token: fresh });
    expect(await approvalAsAdmin(t, later.id)).toMatchObject({ status: 'pending' });
  }, 60_000);

  it('never runs an approved async request whose requester was disabled or whose token was revoked before it ran', async () => {
    const { t: u, counted } = await gatewayWithCounter();
    const ci = await u.gateway.users.add('test', 'ci_bot', 'developer');
    const disabledOnes = await asyncCall(u, 'count', { tag: 'dev' }, { token: u.tokens.dev });
    const revokedOnes = await asyncCall(u, 'count', { tag: 'ci' }, { token: ci });
    const control = await asyncCall(u, 'count', { tag: 'admin' }, { token: u.tokens.admin });
    await pendingApprovals(u, 3);

    // Approved in another process, then the power withdrawn, before this process's event loop
    // turns once: the `run-approved-async` job finds approved requests whose requesters lost their power.
    decideInAnotherProcessSync(u.dbPath, 'approve', disabledOnes.id, 'fine');
    decideInAnotherProcessSync(u.dbPath, 'approve', revokedOnes.id, 'fine');
    cli(u, 'users', 'disable', 'dev_user');
    cli(u, 'users', 'token', 'ci_bot', '--revoke-others');
    // A second admin approves the admin's own request: it must still run.
    await u.gateway.users.add('test', 'second_admin', 'admin');
    decideInAnotherProcessSync(u.dbPath, 'approve', control.id, 'fine', 'second_admin');

    await eventually(async () => (await approvalAsAdmin(u, control.id)).execution.status === 'succeeded');
    await eventually(async () => (await approvalAsAdmin(u, revokedOnes.id)).execution.status === 'failed');
    expect(await approvalAsAdmin(u, disabledOnes.id)).toMatchObject({ status: 'approved', execution: { status: 'failed', error: 'refused: requester disabled', startedAt: null } });
    expect(await approvalAsAdmin(u, revokedOnes.id)).toMatchObject({ status: 'approved', execution: { status: 'failed', error: 'refused: token revoked', startedAt: null } });
    expect(counted()).toBe('admin\n');
    expect((await auditOf(u, 'execution.refused')).map((e) => e.requestId).sort()).toEqual([disabledOnes.id, revokedOnes.id].sort());
    // The job tries again every run; the refusal stays one event and the tool never runs.
    await new Promise((r) => setTimeout(r, POLLING_INTERVAL_S * 3000));
    expect(await auditOf(u, 'execution.refused')).toHaveLength(2);
    expect(counted()).toBe('admin\n');
  }, 60_000);

  it('answers a caller holding the HTTP request 403 access_revoked, never the result, when its requester is disabled between the approval and the run', async () => {
    const { t: u, counted } = await gatewayWithCounter();
    const held = api(u.url, 'POST', '/tools/count/call', { token: u.tokens.dev, body: { arguments: { tag: 'held' } } });
    const [pending] = await pendingApprovals(u, 1);

    decideInAnotherProcessSync(u.dbPath, 'approve', pending.id, 'fine');
    cli(u, 'users', 'disable', 'dev_user');

    const res = await held;
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('access_revoked');
    expect(res.body.result).toBeUndefined();
    expect(res.body.approval).toMatchObject({ status: 'approved', execution: { status: 'failed', error: 'refused: requester disabled' } });
    expect(counted()).toBe('');
    expect(await auditOf(u, 'execution.refused')).toHaveLength(1);
    expect(await auditOf(u, 'execution.started')).toHaveLength(0);
  }, 60_000);

  it('closes a disabled approver\'s socket at once when disabled in this process, before any sweep, frame or ping', async () => {
    // No sweep for 60 s and no ping for 60 s: only the in-process path can close it.
    const t = await gateway({ env: { APPROVAL_POLLING_INTERVAL: '60' } });
    const gone = await approver(t, await t.gateway.users.add('test', 'approver_gone', 'admin'));
    const stays = await approver(t, await t.gateway.users.add('test', 'approver_stays', 'admin'));
    await t.gateway.users.disable('test', 'approver_gone');
    expect(t.gateway.hub.online()).toBe(1);
    expect(await gone.closed).toMatchObject({ code: 4401 });
    expect(stays.ws.readyState).toBe(stays.ws.OPEN);
  });

  it('closes the sockets of an approver disabled by the CLI, or demoted by another process, within the polling interval', async () => {
    const t = await gateway();
    const disabled = await approver(t, await t.gateway.users.add('test', 'approver_cli', 'admin'));
    const demoted = await approver(t, await t.gateway.users.add('test', 'approver_demoted', 'admin'));
    const stays = await approver(t, await t.gateway.users.add('test', 'approver_stays', 'admin'));
    cli(t, 'users', 'disable', 'approver_cli');
    // Demoted by another process writing the database (no command does this; a hand edit could).
    await t.query("update users set role = 'developer' where id = 'approver_demoted'");
    const since = Date.now();
    expect(await disabled.closed).toMatchObject({ code: 4401 });
    expect(await demoted.closed).toMatchObject({ code: 4403 });
    // Two polling intervals at most (one may have just begun); generous for a loaded machine.
    expect(Date.now() - since).toBeLessThan(2 * POLLING_INTERVAL_S * 1000 + 1000);
    expect(stays.ws.readyState).toBe(stays.ws.OPEN);
    expect(t.gateway.hub.online()).toBe(1);
  }, 60_000);

  it('counts only the votes of approvers who are still active and still hold approval.manage: quorum 2, A approves, A is disabled, B approves → still pending', async () => {
    const t = await gateway({ env: { APPROVAL_QUORUM_HIGH: '2' } });
    const a = await t.gateway.users.add('test', 'approver_a', 'admin');
    const b = await t.gateway.users.add('test', 'approver_b', 'admin');
    const c = await t.gateway.users.add('test', 'approver_c', 'admin');
    const d = await t.gateway.users.add('test', 'approver_d', 'admin');
    const request = await asyncCall(t, 'write_file', { path: 'q', content: 'quorum' }, { token: t.tokens.dev });
    const approve = (token: string) => api(t.url, 'POST', `/api/approvals/${request.id}/approve`, { token, body: { reason: 'ok' } });

    expect((await approve(a)).body.approval.status).toBe('pending');
    await t.gateway.users.disable('test', 'approver_a');
    const afterB = await approve(b);
    expect(afterB.status).toBe(200);
    expect(afterB.body.approval).toMatchObject({ status: 'pending', requiredApprovals: 2 });
    // The view says which approval stopped counting, to the approvers over HTTP and the socket alike.
    const shown = (await api(t.url, 'GET', `/api/approvals/${request.id}`, { token: t.tokens.admin })).body.approval;
    expect(shown).toMatchObject({ status: 'pending' });
    expect(shown.decisions).toEqual([
      expect.objectContaining({ approver: 'approver_a', verdict: 'approve', withdrawn: true }),
      expect.not.objectContaining({ withdrawn: true }),
    ]);
    const listed = (await api(t.url, 'GET', '/api/approvals/pending', { token: t.tokens.admin })).body.pending_approvals[0];
    expect(listed.decisions.map((x: { withdrawn?: boolean }) => x.withdrawn ?? false)).toEqual([true, false]);

    // A demoted approver's vote stops counting the same way.
    await t.query("update users set role = 'developer' where id = 'approver_b'");
    expect((await approve(c)).body.approval.status).toBe('pending');
    const done = await approve(d);
    expect(done.body.approval).toMatchObject({ status: 'approved' });
    expect(done.body.approval.decisions.map((x: { approver: string }) => x.approver)).toEqual(['approver_a', 'approver_b', 'approver_c', 'approver_d']);
    // Once decided, the record is what happened: no vote is marked afterwards.
    expect(done.body.approval.decisions.some((x: { withdrawn?: boolean }) => x.withdrawn)).toBe(false);
  });

  it('audits user and token management from the CLI (add, token, --revoke-others, disable, enable, db seed --reset) without a token or its hash, and the chain still verifies', async () => {
    const t = await gateway();
    const issued: string[] = [];
    issued.push(cli(t, 'users', 'add', 'ops', '--role', 'developer').trim().split('\n').at(-1)!);
    issued.push(cli(t, 'users', 'token', 'ops').trim().split('\n').at(-1)!);
    issued.push(cli(t, 'users', 'token', 'ops', '--revoke-others').trim().split('\n').at(-1)!);
    cli(t, 'users', 'disable', 'ops');
    cli(t, 'users', 'enable', 'ops');
    const reseeded = cli(t, 'db', 'seed', '--reset', '--yes');
    issued.push(...[...reseeded.matchAll(/tg_[A-Za-z0-9_-]+/g)].map((m) => m[0]));
    issued.push(...Object.values(t.tokens));

    const rows = await t.query<{ actor: string; action: string; details: string }>(
      `select actor, action, details from audit_events where action like 'user.%' or action like 'token.%' or action = 'db.seeded' order by seq`,
    );
    expect(rows.map((r) => r.action)).toEqual([
      'user.added',
      'token.issued',
      'token.issued',
      'token.revoked',
      'token.issued',
      'user.disabled',
      'user.enabled',
      'token.revoked',
      'db.seeded',
    ]);
    for (const r of rows) expect(r.actor).toMatch(/^cli:./);
    expect(JSON.parse(rows[3]!.details)).toMatchObject({ user: 'ops', ids: [expect.any(Number), expect.any(Number)] });
    expect(JSON.parse(rows[8]!.details)).toMatchObject({ reset: true, users: ['guest_user', 'dev_user', 'admin_user'] });
    const dump = JSON.stringify(await t.query('select * from audit_events'));
    expect(issued.length).toBeGreaterThanOrEqual(9);
    for (const token of issued) {
      expect(dump).not.toContain(token);
      expect(dump).not.toContain(hashToken(token));
    }
    const verified = runCliSync(['audit', 'verify'], { DATABASE_PATH: t.dbPath });
    expect(verified.status, verified.stdout).toBe(0);
   }, 90_000);
});
