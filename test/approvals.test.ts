import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, eventually, pendingApprovals, startTestGateway, type TestGateway } from './helpers.js';

describe('approval workflow over HTTP', () => {
  let t: TestGateway;
  beforeEach(async () => {
    t = await startTestGateway();
  });
  afterEach(async () => {
    await t.close();
  });

  it('runs a LOW tool at once and returns its MCP result', async () => {
    const res = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: { message: 'hi' } } });
    expect(res.status).toBe(200);
    expect(res.body.result.content[0].text).toBe('{"message":"hi"}');
  });

  it('holds a HIGH tool until an admin approves, then runs it and returns 200 with the approval', async () => {
    const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'x', content: 'abc' } } });
    const [pending] = await pendingApprovals(t);
    expect(pending).toMatchObject({ tool: 'write_file', sensitivity: 'HIGH', status: 'pending', requester: { id: 'dev_user', role: 'developer' } });
    expect(pending.shortId).toBe(pending.id.replace(/-/g, '').slice(0, 8));
    const decided = await api(t.url, 'POST', `/api/approvals/${pending.shortId}/approve`, { token: t.tokens.admin, body: { reason: 'fine' } });
    expect(decided.status).toBe(200);
    expect(decided.body.approval.status).toBe('approved');
    const res = await call;
    expect(res.status).toBe(200);
    expect(res.body.result.content[0].text).toBe('wrote 3 bytes to x');
    expect(res.body.approval).toMatchObject({ status: 'approved', execution: { status: 'succeeded' } });
    expect(res.body.approval.decisions).toEqual([expect.objectContaining({ approver: 'admin_user', verdict: 'approve', reason: 'fine' })]);
  });

  it('answers 403 approval_rejected with the approval when rejected', async () => {
    const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'x', content: 'abc' } } });
    const [pending] = await pendingApprovals(t);
    await api(t.url, 'POST', `/api/approvals/${pending.id}/reject`, { token: t.tokens.admin, body: { reason: 'not today' } });
    const res = await call;
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('approval_rejected');
    expect(res.body.error.message).toContain('not today');
    expect(res.body.approval.status).toBe('rejected');
  });

  it('answers 408 approval_expired when nobody decides in time', async () => {
    await t.close();
    t = await startTestGateway({ env: { APPROVAL_TIMEOUT: '0.3' } });
    const res = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'x', content: 'abc' } } });
    expect(res.status).toBe(408);
    expect(res.body.error.code).toBe('approval_expired');
    expect(res.body.approval.status).toBe('expired');
    const late = await api(t.url, 'POST', `/api/approvals/${res.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: 'late' } });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('not_pending');
  });

  it('cancels the request when the waiting caller disconnects', async () => {
    const controller = new AbortController();
    const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'x', content: 'abc' } }, signal: controller.signal }).catch(
      (err: Error) => err,
    );
    const [pending] = await pendingApprovals(t);
    controller.abort();
    await call;
    const after = await eventually(async () => {
      const r = await api(t.url, 'GET', `/api/approvals/${pending.id}`, { token: t.tokens.admin });
      return r.body.approval.status === 'cancelled' ? r.body.approval : null;
    });
    expect(after.statusReason).toBe('caller disconnected');
  });

  it('with Prefer: respond-async answers 202 with a Location, and runs the tool once approved', async () => {
    const res = await api(t.url, 'POST', '/tools/write_file/call', {
      token: t.tokens.dev,
      body: { arguments: { path: 'x', content: 'abcd' } },
      headers: { prefer: 'respond-async' },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/api/approvals/${res.body.approval.id}`);
    const waiting = api(t.url, 'GET', `${res.headers.get('location')}?wait=10`, { token: t.tokens.dev });
    await api(t.url, 'POST', `/api/approvals/${res.body.approval.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
    const done = await waiting;
    expect(done.status).toBe(200);
    expect(done.body.approval).toMatchObject({ status: 'approved', execution: { status: 'succeeded' } });
    expect(done.body.approval.result.content[0].text).toBe('wrote 4 bytes to x');
  });
});
