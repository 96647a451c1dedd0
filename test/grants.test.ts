import { afterEach, describe, expect, it } from 'vitest';
import { verifyReceipt } from '../src/receipts/receipts.js';
import { api, startTestGateway, type TestGateway } from './helpers.js';
import { connectApprover } from './ws-client.js';

/**
 * Standing approvals through a real gateway: approve once with a grant, and the same call by the
 * same requester runs at once until the grant expires, runs out, is revoked, or a party is disabled.
 */

const ARGS = { path: '/srv/app/notes.txt', content: 'hello' };

describe('standing approvals', () => {
  let t: TestGateway | undefined;
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  afterEach(async () => {
    await t?.close();
    t = undefined;
    offset = 0;
  });

  /** An async call: `approved` with `grantId` when a grant covered it, else `pending`. */
  const call = async (args: Record<string, unknown>, token = t!.tokens.dev, tool = 'write_file') => {
    const res = await api(t!.app, 'POST', `/tools/${tool}/call`, { token, body: { arguments: args }, headers: { prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    return res.body.approval;
  };

  /** Makes a pending request and approves it with `grant`; returns the approve answer. */
  const approveWith = async (grant: Record<string, unknown>, args: Record<string, unknown> = ARGS, tool = 'write_file') => {
    const pending = await call(args, t!.tokens.dev, tool);
    return api(t!.app, 'POST', `/api/approvals/${pending.id}/approve`, { token: t!.tokens.admin, body: { reason: 'routine', grant } });
  };

  it('lets the next identical calls run at once for 15 minutes, audited with the grant id, and not after it expires', async () => {
    t = await startTestGateway({ clock });
    const approved = await approveWith({ for: '15m' });
    expect(approved.status).toBe(200);
    const grant = approved.body.grant;
    expect(grant).toMatchObject({ tool: 'write_file', requester: 'dev_user', scope: 'exact', approvers: ['admin_user'], state: 'active', maxUses: 100 });
    expect(Date.parse(grant.expiresAt) - Date.parse(grant.createdAt)).toBe(15 * 60_000);

    // A waiting call runs at once: no approver involved.
    const ran = await api(t.app, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { content: 'hello', path: '/srv/app/notes.txt' } } });
    expect(ran.status).toBe(200);
    expect(ran.body.result.content[0].text).toBe('wrote 5 bytes to /srv/app/notes.txt');
    expect(ran.body.approval).toMatchObject({ status: 'approved', grantId: grant.id, decisions: [], execution: { status: 'succeeded' } });
    const jwks = (await api(t.app, 'GET', '/.well-known/jwks.json')).body;
    expect(await verifyReceipt(ran.body.approval.receipt, jwks, { arguments: ARGS })).toMatchObject({ ok: true, claims: { grant: grant.id, approvers: [] } });
    const [audited] = await t.query<{ actor: string; details: string }>("select actor, details from audit_events where action = 'approval.granted' and request_id = ?", ran.body.approval.id);
    expect(audited!.actor).toBe('dev_user');
    expect(JSON.parse(audited!.details)).toMatchObject({ grant: grant.id });
    expect(await t.query("select request_id from audit_events where action = 'grant.created'")).toHaveLength(1);

    expect(await call(ARGS)).toMatchObject({ status: 'approved', grantId: grant.id });
    // Another requester, another tool or other arguments are not covered.
    expect(await call(ARGS, t.tokens.admin)).toMatchObject({ status: 'pending' });
    expect(await call({ ...ARGS, content: 'other' })).toMatchObject({ status: 'pending' });
    expect(await call({ ...ARGS, extra: true })).toMatchObject({ status: 'pending' });

    offset = 15 * 60_000 + 1000;
    expect(await call(ARGS)).toMatchObject({ status: 'pending', grantId: null });
    const listed = await api(t.app, 'GET', '/api/grants?all=true', { token: t.tokens.admin });
    expect(listed.body.grants[0]).toMatchObject({ id: grant.id, state: 'expired', uses: 2 });
    expect((await api(t.app, 'GET', '/api/grants', { token: t.tokens.admin })).body.count).toBe(0);
  });

  it('stops at its call limit, and at revocation', async () => {
    t = await startTestGateway();
    const limited = (await approveWith({ times: 2 })).body.grant;
    expect(limited.usesLeft).toBe(2);
    expect(await call(ARGS)).toMatchObject({ grantId: limited.id });
    expect(await call(ARGS)).toMatchObject({ grantId: limited.id });
    expect(await call(ARGS)).toMatchObject({ status: 'pending', grantId: null });
    expect((await api(t.app, 'GET', '/api/grants?all=true', { token: t.tokens.admin })).body.grants[0]).toMatchObject({ state: 'used_up', usesLeft: 0, uses: 2 });

    const other = { path: '/srv/app/b.txt', content: 'b' };
    const revocable = (await approveWith({ for: '1h' }, other)).body.grant;
    expect(await call(other)).toMatchObject({ grantId: revocable.id });
    const guestTry = await api(t.app, 'POST', `/api/grants/${revocable.id}/revoke`, { token: t.tokens.dev, body: { reason: 'mine now' } });
    expect(guestTry.status).toBe(403);
    const revoked = await api(t.app, 'POST', `/api/grants/${revocable.id.slice(0, 8)}/revoke`, { token: t.tokens.admin, body: { reason: 'no longer needed' } });
    expect(revoked.status).toBe(200);
    expect(revoked.body.grant).toMatchObject({ state: 'revoked', revokedBy: 'admin_user', revokeReason: 'no longer needed' });
    expect(await call(other)).toMatchObject({ status: 'pending' });
    expect((await api(t.app, 'POST', `/api/grants/${revocable.id}/revoke`, { token: t.tokens.admin, body: { reason: 'again' } })).status).toBe(409);
    expect(await t.query("select request_id from audit_events where action = 'grant.revoked'")).toHaveLength(1);
  });

  it('covers, with --match, values under a path prefix or a glob while every other argument stays equal', async () => {
    t = await startTestGateway();
    const grant = (await approveWith({ for: '1h', match: { path: '/srv/app/**' } })).body.grant;
    expect(grant).toMatchObject({ scope: 'match', match: { path: { kind: 'prefix', value: '/srv/app/' } } });
    expect(grant.scopeText).toBe('path under "/srv/app/" (no ".." segments); every other argument exactly as approved');
    expect(await call({ path: '/srv/app/deep/other.txt', content: 'hello' })).toMatchObject({ grantId: grant.id });
    expect(await call({ path: '/srv/other/x', content: 'hello' })).toMatchObject({ status: 'pending' });
    expect(await call({ path: '/srv/app/../../etc/passwd', content: 'hello' })).toMatchObject({ status: 'pending' });
    expect(await call({ path: '/srv/app/x', content: 'different' })).toMatchObject({ status: 'pending' });

    const globbed = (await approveWith({ for: '1h', match: { path: '/tmp/*.log' } }, { path: '/tmp/a.log', content: 'x' })).body.grant;
    expect(globbed.match.path).toEqual({ kind: 'glob', value: '/tmp/*.log' });
    expect(await call({ path: '/tmp/b.log', content: 'x' })).toMatchObject({ grantId: globbed.id });
    expect(await call({ path: '/tmp/b.txt', content: 'x' })).toMatchObject({ status: 'pending' });

    // Constraining an argument the request does not have, or one the approved value fails, decides nothing.
    const pending = await call({ path: '/srv/app/z', content: 'z' });
    const refused = await api(t.app, 'POST', `/api/approvals/${pending.id}/approve`, { token: t.tokens.admin, body: { reason: 'x', grant: { for: '1h', match: { nope: 'a*' } } } });
    expect([refused.status, refused.body.error.code]).toEqual([403, 'grant_not_allowed']);
    expect((await api(t.app, 'GET', `/api/approvals/${pending.id}`, { token: t.tokens.admin })).body.approval.status).toBe('pending');
  });

  it('covers any arguments of the tool with --any-args, and nothing of another tool', async () => {
    t = await startTestGateway();
    const grant = (await approveWith({ times: 5, anyArgs: true })).body.grant;
    expect(grant).toMatchObject({ scope: 'any', scopeText: 'ANY arguments of this tool' });
    expect(await call({ path: '/anything', content: 'else', mode: 'x' })).toMatchObject({ grantId: grant.id });
    expect(await call({ tag: 'x' }, t.tokens.dev, 'count')).toMatchObject({ status: 'pending' });
  });

  it('dies when its requester or its approver is disabled', async () => {
    t = await startTestGateway();
    await t.gateway.users.add('cli:test', 'second_admin', 'admin');
    const byAdmin = (await approveWith({ for: '1h' })).body.grant;
    await t.gateway.users.disable('cli:test', 'admin_user');
    expect(await call(ARGS)).toMatchObject({ status: 'pending' });
    expect((await api(t.app, 'GET', '/api/grants?all=true', { token: t.tokens.guest })).status).toBe(403);
    expect(await t.query('select revoke_reason from approval_grants where id = ?', byAdmin.id)).toEqual([{ revoke_reason: 'user admin_user disabled' }]);

    await t.gateway.users.enable('cli:test', 'admin_user');
    const again = (await approveWith({ for: '1h' }, { path: '/srv/app/c', content: 'c' })).body.grant;
    expect(await call({ path: '/srv/app/c', content: 'c' })).toMatchObject({ grantId: again.id });
    await t.gateway.users.disable('cli:test', 'dev_user');
    expect(await t.query('select revoked_by from approval_grants where id = ? and revoked_at is not null', again.id)).toEqual([{ revoked_by: 'cli:test' }]);
  });

  it('is refused for CRITICAL tools unless the operator allows them, and over the configured caps', async () => {
    t = await startTestGateway({ env: { GRANT_MAX_DURATION_HIGH: '600', GRANT_MAX_USES_HIGH: '3' } });
    const critical = await call({ command: 'ls' }, t.tokens.dev, 'execute_bash');
    const refused = await api(t.app, 'POST', `/api/approvals/${critical.id}/approve`, { token: t.tokens.admin, body: { reason: 'x', grant: { for: '5m' } } });
    expect([refused.status, refused.body.error.code]).toEqual([403, 'grant_not_allowed']);
    expect(refused.body.error.message).toContain('CRITICAL');
    expect((await approveWith({ for: '11m' })).body.error.code).toBe('grant_not_allowed');
    expect((await approveWith({ times: 4 }, { path: 'x', content: '1' })).body.error.code).toBe('grant_not_allowed');
    const capped = (await approveWith({ times: 2 }, { path: 'x', content: '2' })).body.grant;
    expect(Date.parse(capped.expiresAt) - Date.parse(capped.createdAt)).toBe(600_000);
    await t.close();

    t = await startTestGateway({ env: { GRANT_MAX_DURATION_CRITICAL: '300' } });
    const allowed = await call({ command: 'ls' }, t.tokens.dev, 'execute_bash');
    const made = await api(t.app, 'POST', `/api/approvals/${allowed.id}/approve`, { token: t.tokens.admin, body: { reason: 'x', grant: { for: '5m' } } });
    expect(made.body.grant).toMatchObject({ sensitivity: 'CRITICAL', maxUses: 10 });
  });

  it('under a quorum, makes a grant only when every counted approver asked for one, with the narrowest terms', async () => {
    t = await startTestGateway({ env: { APPROVAL_QUORUM_HIGH: '2' } });
    await t.gateway.users.add('cli:test', 'second_admin', 'admin');
    const second = await t.gateway.users.issueToken('cli:test', 'second_admin');

    const first = await call(ARGS);
    const one = await api(t.app, 'POST', `/api/approvals/${first.id}/approve`, { token: t.tokens.admin, body: { reason: 'a', grant: { for: '1h', times: 5, match: { path: '/srv/**' } } } });
    expect(one.body).toMatchObject({ approval: { status: 'pending' }, grant: null });
    const two = await api(t.app, 'POST', `/api/approvals/${first.id}/approve`, { token: second, body: { reason: 'b', grant: { for: '10m' } } });
    expect(two.body.approval.status).toBe('approved');
    expect(two.body.grant).toMatchObject({ scope: 'exact', maxUses: 5, approvers: ['admin_user', 'second_admin'] });
    expect(Date.parse(two.body.grant.expiresAt) - Date.parse(two.body.grant.createdAt)).toBe(600_000);

    const other = { path: '/srv/app/q', content: 'q' };
    const next = await call(other);
    await api(t.app, 'POST', `/api/approvals/${next.id}/approve`, { token: t.tokens.admin, body: { reason: 'a', grant: { for: '1h' } } });
    const plain = await api(t.app, 'POST', `/api/approvals/${next.id}/approve`, { token: second, body: { reason: 'b' } });
    expect(plain.body).toMatchObject({ approval: { status: 'approved' }, grant: null });
    expect(await call(other)).toMatchObject({ status: 'pending' });
  });

  it('previews what an approval with a grant would allow, by the same rules and caps, deciding nothing', async () => {
    t = await startTestGateway({ env: { GRANT_MAX_DURATION_HIGH: '600', GRANT_MAX_USES_HIGH: '3', APPROVAL_QUORUM_HIGH: '2' } });
    const pending = await call(ARGS);
    const preview = (grant: Record<string, unknown>, id = pending.id, token = t!.tokens.admin) => api(t!.app, 'POST', `/api/approvals/${id}/grant-preview`, { token, body: { grant } });

    const globbed = await preview({ times: 2, match: { path: '/srv/*/notes.txt' } });
    expect(globbed.status).toBe(200);
    expect(globbed.body.preview).toEqual({
      tool: 'write_file',
      requester: 'dev_user',
      sensitivity: 'HIGH',
      scope: 'match',
      scopeText: 'path matching glob "/srv/*/notes.txt"; every other argument exactly as approved',
      match: { path: { kind: 'glob', value: '/srv/*/notes.txt' } },
      arguments: ARGS,
      seconds: 600,
      uses: 2,
      requiredApprovals: 2,
      approvals: 0,
    });
    expect((await preview({ for: '5m', match: { path: '/srv/app/**' } })).body.preview).toMatchObject({ seconds: 300, uses: 3, match: { path: { kind: 'prefix', value: '/srv/app/' } } });

    // Refused as the approval would refuse it: over a cap, a bad bound, a CRITICAL tool, a viewer.
    for (const [grant, status, code] of [
      [{ times: 4 }, 403, 'grant_not_allowed'],
      [{ for: '11m' }, 403, 'grant_not_allowed'],
      [{ match: { path: '/other/**' }, times: 1 }, 403, 'grant_not_allowed'],
      [{}, 400, 'validation_failed'],
      [{ for: 'soon' }, 400, 'validation_failed'],
    ] as const) {
      const res = await preview(grant);
      expect([res.status, res.body.error.code], JSON.stringify(grant)).toEqual([status, code]);
    }
    const critical = await call({ command: 'ls' }, t.tokens.dev, 'execute_bash');
    expect((await preview({ for: '1m' }, critical.id)).body.error.code).toBe('grant_not_allowed');
    expect((await preview({ for: '1m' }, pending.id, t.tokens.guest)).status).toBe(403);
    expect(await t.query("select action from audit_events where action in ('approval.decision', 'approval.approved', 'grant.created')")).toEqual([]);
    expect((await api(t.app, 'GET', `/api/approvals/${pending.id}`, { token: t.tokens.admin })).body.approval).toMatchObject({ status: 'pending', decisions: [] });

    await api(t.app, 'POST', `/api/approvals/${pending.id}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
    expect((await preview({ for: '1m' })).status).toBe(409);
  });

  it('tells the console session the caps, so the page offers only what may be granted', async () => {
    t = await startTestGateway({ env: { GRANT_MAX_DURATION_HIGH: '600', GRANT_MAX_USES_HIGH: '3' } });
    const signedIn = await api(t.app, 'POST', '/api/session', { body: { token: t.tokens.admin } });
    expect(signedIn.body.session.grantCaps).toEqual({ HIGH: { maxSeconds: 600, maxUses: 3 }, CRITICAL: null });
  });

  it('never allows more calls than --times, however many arrive at once', async () => {
    t = await startTestGateway({ env: { APPROVAL_MAX_PENDING: '200', APPROVAL_MAX_PENDING_PER_USER: '200' } });
    const grant = (await approveWith({ times: 3 })).body.grant;
    const results = await Promise.all(Array.from({ length: 20 }, () => call(ARGS)));
    expect(results.filter((a) => a.grantId === grant.id)).toHaveLength(3);
    expect(results.filter((a) => a.status === 'pending')).toHaveLength(17);
  });
});

describe('standing approvals over the WebSocket', () => {
  it('takes a grant in the decide frame and answers it in decide.ok; a refused one decides nothing', async () => {
    const t = await startTestGateway();
    const approver = await connectApprover(t.wsUrl, t.tokens.admin);
    try {
      await approver.seen((f) => f.type === 'hello');
      const ask = async (tool: string, args: Record<string, unknown>) =>
        (await api(t.app, 'POST', `/tools/${tool}/call`, { token: t.tokens.dev, body: { arguments: args }, headers: { prefer: 'respond-async' } })).body.approval;
      const high = await ask('write_file', ARGS);
      approver.send({ type: 'decide', ref: 'g1', id: high.shortId, decision: 'approve', reason: 'ok', grant: { for: '15m', times: 3 } });
      const ok = await approver.next((f) => f.ref === 'g1');
      expect(ok).toMatchObject({ type: 'decide.ok', approval: { status: 'approved' }, grant: { tool: 'write_file', requester: 'dev_user', usesLeft: 3, scope: 'exact' } });
      expect(await ask('write_file', ARGS)).toMatchObject({ status: 'approved', grantId: ok.grant.id });

      const critical = await ask('execute_bash', { command: 'ls' });
      approver.send({ type: 'decide', ref: 'g2', id: critical.shortId, decision: 'approve', reason: 'ok', grant: { for: '1m' } });
      expect(await approver.next((f) => f.ref === 'g2')).toMatchObject({ type: 'error', code: 'grant_not_allowed' });
      approver.send({ type: 'decide', ref: 'g3', id: critical.shortId, decision: 'reject', reason: 'no', grant: { for: '1m' } });
      expect(await approver.next((f) => f.ref === 'g3')).toMatchObject({ type: 'error', code: 'validation_failed' });
      expect((await api(t.app, 'GET', `/api/approvals/${critical.id}`, { token: t.tokens.admin })).body.approval.status).toBe('pending');
    } finally {
      await approver.close();
      await t.close();
    }
  });
});
