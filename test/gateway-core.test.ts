import { afterEach, describe, expect, it } from 'vitest';
import { outcomeError } from '../src/approvals/gate.js';
import { createUserWithToken } from '../src/db/seed.js';
import { api, eventually, pendingApprovals, startTestGateway, type TestGateway } from './helpers.js';

const HIGH_CALL = { arguments: { path: 'notes.txt', content: 'hello' } };

// Request-and-answer tests go through app.request() (t.app): no socket needed. Tests that hold a
// caller's connection while others decide keep a real one.
describe('gateway core', () => {
  let t: TestGateway | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('decides 10 concurrent requests 5 approve / 5 reject with exact counts', async () => {
    t = await startTestGateway();
    const gw = t;
    const calls = Array.from({ length: 10 }, (_, i) =>
      api(gw.url, 'POST', '/tools/write_file/call', { token: gw.tokens.dev, body: { arguments: { path: `f${i}`, content: String(i) } } }),
    );
    const pending = await pendingApprovals(gw, 10);
    expect(pending).toHaveLength(10);
    const decisions = await Promise.all(
      pending.map((p: { id: string }, i: number) =>
        api(gw.url, 'POST', `/api/approvals/${p.id}/${i < 5 ? 'approve' : 'reject'}`, { token: gw.tokens.admin, body: { reason: `r${i}` } }),
      ),
    );
    expect(decisions.map((d) => d.status)).toEqual(Array(10).fill(200));
    const results = await Promise.all(calls);
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    expect(results.filter((r) => r.status === 403 && r.body.error.code === 'approval_rejected')).toHaveLength(5);
    expect((await gw.gateway.store.approvals.countByStatus())).toEqual({ approved: 5, rejected: 5 });
  });

  it('lets exactly one of two racing approvers win; the other gets 409 not_pending', async () => {
    t = await startTestGateway();
    const second = await createUserWithToken(t.gateway.store, 'admin_two', 'admin', Date.now());
    const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: HIGH_CALL });
    const [p] = await pendingApprovals(t);
    const [a, b] = await Promise.all([
      api(t.url, 'POST', `/api/approvals/${p.id}/approve`, { token: t.tokens.admin, body: { reason: 'one' } }),
      api(t.url, 'POST', `/api/approvals/${p.id}/reject`, { token: second, body: { reason: 'two' } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const loser = a.status === 409 ? a : b;
    expect(loser.body.error.code).toBe('not_pending');
    expect((await t.gateway.store.approvals.decisions(p.id))).toHaveLength(1);
    await call;
  });

  it('refuses self-approval, even for an admin', async () => {
    t = await startTestGateway();
    const call = api(t.url, 'POST', '/tools/git_commit/call', { token: t.tokens.admin, body: { arguments: { message: 'm' } } });
    const [p] = await pendingApprovals(t);
    const res = await api(t.url, 'POST', `/api/approvals/${p.shortId}/approve`, { token: t.tokens.admin, body: { reason: 'mine' } });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('self_approval');
    expect((await t.gateway.store.approvals.request(p.id))?.status).toBe('pending');
    await api(t.url, 'DELETE', `/api/approvals/${p.id}`, { token: t.tokens.admin });
    expect((await call).status).toBe(409);
  });

  it('resolves short ids: unique prefix works, ambiguous gets 409, unknown and wildcards get 404', async () => {
    const ids = ['abcdef01-0000-4000-8000-000000000001', 'abcdef01-0000-4000-8000-000000000002', '12345678-0000-4000-8000-000000000003'];
    let next = 0;
    t = await startTestGateway({ ids: { uuid: () => ids[next++]! } });
    const gw = t;
    for (let i = 0; i < 3; i++) {
      const r = await api(gw.app, 'POST', '/tools/write_file/call', { token: gw.tokens.dev, body: HIGH_CALL, headers: { prefer: 'respond-async' } });
      expect(r.status).toBe(202);
    }
    const approve = (ref: string) => api(gw.app, 'POST', `/api/approvals/${encodeURIComponent(ref)}/approve`, { token: gw.tokens.admin, body: { reason: 'x' } });
    const ambiguous = await approve('abcdef01');
    expect(ambiguous.status).toBe(409);
    expect(ambiguous.body.error.code).toBe('ambiguous_id');
    for (const ref of ['ffffffff', 'abcdef0', 'abcdef0%', 'abcdef0_', "1' OR '1'='1", '%%%%%%%%', '________']) {
      const r = await approve(ref);
      expect(r.status, ref).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    }
    expect((await approve('abcdef01-0000-4000-8000-000000000002')).status).toBe(200);
    expect((await approve('12345678')).status).toBe(200);
  });

  it('needs a quorum of two distinct approvers when configured', async () => {
    t = await startTestGateway({ env: { APPROVAL_QUORUM_HIGH: '2' } });
    const second = await createUserWithToken(t.gateway.store, 'admin_two', 'admin', Date.now());
    const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: HIGH_CALL });
    const [p] = await pendingApprovals(t);
    expect(p.requiredApprovals).toBe(2);
    const first = await api(t.url, 'POST', `/api/approvals/${p.id}/approve`, { token: t.tokens.admin, body: { reason: 'one' } });
    expect(first.body.approval.status).toBe('pending');
    const again = await api(t.url, 'POST', `/api/approvals/${p.id}/approve`, { token: t.tokens.admin, body: { reason: 'again' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_decided');
    const done = await api(t.url, 'POST', `/api/approvals/${p.id}/approve`, { token: second, body: { reason: 'two' } });
    expect(done.body.approval.status).toBe('approved');
    const res = await call;
    expect(res.status).toBe(200);
    expect(res.body.approval.decisions).toHaveLength(2);
  });

  it('answers 429 too_many_pending beyond APPROVAL_MAX_PENDING without growing the table', async () => {
    t = await startTestGateway({ env: { APPROVAL_MAX_PENDING: '3' } });
    const gw = t;
    const asyncCall = () => api(gw.app, 'POST', '/tools/write_file/call', { token: gw.tokens.dev, body: HIGH_CALL, headers: { prefer: 'respond-async' } });
    for (let i = 0; i < 3; i++) expect((await asyncCall()).status).toBe(202);
    const over = await asyncCall();
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe('too_many_pending');
    expect((await gw.gateway.store.approvals.countByStatus())).toEqual({ pending: 3 });
  });

  it('refuses approver endpoints to a guest and a developer', async () => {
    t = await startTestGateway();
    for (const token of [t.tokens.guest, t.tokens.dev]) {
      const res = await api(t.app, 'GET', '/api/approvals/pending', { token });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('permission_denied');
    }
    expect((await api(t.app, 'GET', '/api/approvals/pending')).status).toBe(401);
  });

  it('refuses a disabled user on the very next request', async () => {
    t = await startTestGateway();
    expect((await api(t.url, 'GET', '/tools', { token: t.tokens.dev })).status).toBe(200);
    (await t.gateway.store.withTransaction((tx) => tx.identity.setUserActive('dev_user', false, Date.now())));
    const res = await api(t.url, 'GET', '/tools', { token: t.tokens.dev });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('user_disabled');
  });

  it('gives each role its own tool list and refuses tools outside it', async () => {
    t = await startTestGateway();
    const names = async (token: string) => (await api(t!.app, 'GET', '/tools', { token })).body.tools.map((x: { name: string }) => x.name).sort();
    const guest = await names(t.tokens.guest);
    const dev = await names(t.tokens.dev);
    const admin = await names(t.tokens.admin);
    expect(guest).toContain('echo');
    expect(guest).not.toContain('write_file');
    expect(dev).toContain('write_file');
    expect(dev).not.toContain('git_commit');
    expect(admin).toContain('git_commit');
    const denied = await api(t.app, 'POST', '/tools/git_commit/call', { token: t.tokens.dev, body: { arguments: { message: 'x' } } });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('permission_denied');
    const unknown = await api(t.app, 'POST', '/tools/..%2F..%2Fetc%2Fpasswd/call', { token: t.tokens.dev, body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('unknown_tool');
  });

  it('reports a tool that ran with isError as a 200 with that result', async () => {
    t = await startTestGateway();
    const res = await api(t.app, 'POST', '/tools/fail_tool/call', { token: t.tokens.guest, body: {} });
    expect(res.status).toBe(200);
    expect(res.body.result.isError).toBe(true);
  });

  it('with both flags off: no token needed and HIGH tools run unapproved, logged as such', async () => {
    t = await startTestGateway({ env: { RBAC_ENABLED: 'false', APPROVAL_WORKFLOW_ENABLED: 'false' } });
    const res = await api(t.url, 'POST', '/tools/git_commit/call', { body: { arguments: { message: 'm' } } });
    expect(res.status).toBe(200);
    expect(res.body.result.content[0].text).toBe('committed: m');
    const [event] = (await t.gateway.store.audit.auditPage({ limit: 1, action: 'tool.executed' }));
    expect(event?.actor).toBe('anonymous');
    expect(JSON.parse(event!.details)).toMatchObject({ unapproved: true, reason: 'approval workflow disabled' });
    // Approver endpoints still need an authenticated approver.
    expect((await api(t.url, 'GET', '/api/approvals/pending')).status).toBe(401);
    const health = await api(t.url, 'GET', '/health');
    expect(health.body).toMatchObject({ status: 'ok', approval_workflow: false, rbac: false, db: 'ok' });
  });

  it('with both flags on: a token is required and HIGH tools wait', async () => {
    t = await startTestGateway();
    expect((await api(t.app, 'POST', '/tools/echo/call', { body: {} })).status).toBe(401);
    expect((await api(t.app, 'POST', '/tools/echo/call', { body: {}, token: 'tg_not-a-real-token' })).status).toBe(401);
    const res = await api(t.app, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: HIGH_CALL, headers: { prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    expect((await api(t.app, 'GET', '/health')).body).toMatchObject({ approval_workflow: true, rbac: true, pending: 1 });
  });

  it('ignores X-User-ID unless TRUST_USER_HEADER is on', async () => {
    t = await startTestGateway();
    expect((await api(t.app, 'GET', '/tools', { headers: { 'x-user-id': 'admin_user' } })).status).toBe(401);
    await t.close();
    t = await startTestGateway({ env: { TRUST_USER_HEADER: 'true' } });
    expect((await api(t.app, 'GET', '/api/approvals/pending', { headers: { 'x-user-id': 'admin_user' } })).status).toBe(200);
    expect((await api(t.app, 'GET', '/tools', { headers: { 'x-user-id': 'nobody' } })).status).toBe(401);
  });

  it('lets the requester (only) cancel a pending request and read it back', async () => {
    t = await startTestGateway();
    const created = await api(t.app, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: HIGH_CALL, headers: { prefer: 'respond-async' } });
    const id = created.body.approval.id;
    expect((await api(t.app, 'GET', `/api/approvals/${id}`, { token: t.tokens.guest })).status).toBe(404);
    expect((await api(t.app, 'DELETE', `/api/approvals/${id}`, { token: t.tokens.admin })).status).toBe(403);
    const cancelled = await api(t.app, 'DELETE', `/api/approvals/${id}`, { token: t.tokens.dev });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.approval.status).toBe('cancelled');
    expect((await api(t.app, 'DELETE', `/api/approvals/${id}`, { token: t.tokens.dev })).status).toBe(409);
  });

  it('takes decision-only requests: the caller runs the tool itself once approved', async () => {
    t = await startTestGateway();
    const res = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'execute_bash', arguments: { command: 'ls' } } });
    expect(res.status).toBe(202);
    expect(res.body.approval).toMatchObject({ mode: 'decision', status: 'pending', sensitivity: 'CRITICAL' });
    await api(t.app, 'POST', `/api/approvals/${res.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
    const after = await api(t.app, 'GET', `/api/approvals/${res.body.approval.id}?wait=5`, { token: t.tokens.dev });
    expect(after.body.approval).toMatchObject({ status: 'approved', execution: { status: 'none' } });
    const low = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'list_files', arguments: {} } });
    expect(low.body.approval.status).toBe('approved');
    const unknown = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'rm_rf', arguments: {} } });
    expect(unknown.status).toBe(404);
  });

  it('long-polls GET /api/approvals/{id}?wait= until decided', async () => {
    t = await startTestGateway();
    const created = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: {} } });
    const id = created.body.approval.id;
    const started = Date.now();
    const quick = await api(t.url, 'GET', `/api/approvals/${id}?wait=0.2`, { token: t.tokens.dev });
    expect(quick.body.approval.status).toBe('pending');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    const waiting = api(t.url, 'GET', `/api/approvals/${id}?wait=30`, { token: t.tokens.dev });
    await api(t.url, 'POST', `/api/approvals/${id}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
    expect((await waiting).body.approval.status).toBe('rejected');
  });

  it('claims the run in the approving transaction, and fails it (never runs it) if the caller left meanwhile', async () => {
    t = await startTestGateway();
    const { approvals, store } = t.gateway;
    const dev = { id: 'dev_user', role: 'developer', anonymous: false };
    const admin = { id: 'admin_user', role: 'admin', anonymous: false };

    const kept = approvals.gate.callTool(dev, 'write_file', { path: 'a', content: 'b' }, 'wait');
    const [p1] = await pendingApprovals(t);
    await approvals.requests.decide(admin, p1.id, 'approve', 'ok');
    // Claimed for this caller by the time decide returns; the in-process tool may even have finished
    // by the time a pooled read (PostgreSQL) comes back.
    expect((await store.approvals.request(p1.id))).toMatchObject({
      status: 'approved',
      executionStatus: expect.stringMatching(/^(running|succeeded)$/),
      executionInstanceId: t.gateway.instanceId,
    });
    expect(await kept).toMatchObject({ kind: 'approved-and-ran', approval: { execution: { status: 'succeeded' } } });

    const controller = new AbortController();
    const left = approvals.gate.callTool(dev, 'write_file', { path: 'a', content: 'b' }, 'wait', { signal: controller.signal });
    const [p2] = await pendingApprovals(t);
    // Aborted the moment the approval is published, before the waiter's continuation runs.
    const unwatch = t.gateway.bus.watch(p2.id, (event) => {
      if (event.approval.status === 'approved') controller.abort();
    });
    await approvals.requests.decide(admin, p2.id, 'approve', 'ok');
    unwatch();
    const outcome = await left;
    expect(outcome).toMatchObject({ kind: 'cancelled', message: 'the caller went away before the tool ran' });
    expect(outcomeError(outcome)?.code).toBe('approval_cancelled');
    expect((await store.approvals.request(p2.id))).toMatchObject({ status: 'approved', executionStatus: 'failed', executionError: 'the caller went away before the tool ran' });
    expect((await store.audit.auditPage({ limit: 10 })).filter((e) => e.requestId === p2.id).map((e) => e.action)).toEqual([
      'execution.failed',
      'execution.started',
      'approval.approved',
      'approval.requested',
    ]);
  });

  it('counts pending requests in /health', async () => {
    t = await startTestGateway();
    const gw = t;
    await api(gw.app, 'POST', '/tools/write_file/call', { token: gw.tokens.dev, body: HIGH_CALL, headers: { prefer: 'respond-async' } });
    await eventually(async () => (await api(gw.app, 'GET', '/health')).body.pending === 1);
  });
});
