import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestGateway, type TestGateway } from './helpers.js';

describe('bad input gets a 4xx with the contract error body and changes nothing', () => {
  let t: TestGateway;
  let approvalId: string;
  beforeAll(async () => {
    t = await startTestGateway();
    const r = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: {} } });
    approvalId = r.body.approval.id;
  });
  afterAll(async () => {
    await t.close();
  });

  const cases: [string, string, string, 'dev' | 'admin', { rawBody?: string; body?: unknown }, number, string][] = [
    ['tool call: not JSON', 'POST', '/tools/echo/call', 'dev', { rawBody: '{"arguments":' }, 400, 'invalid_json'],
    ['tool call: arguments not an object', 'POST', '/tools/echo/call', 'dev', { body: { arguments: [1, 2] } }, 400, 'validation_failed'],
    ['tool call: arguments a string', 'POST', '/tools/echo/call', 'dev', { body: { arguments: 'rm -rf /' } }, 400, 'validation_failed'],
    ['tool call: unknown field', 'POST', '/tools/echo/call', 'dev', { body: { arguments: {}, sudo: true } }, 400, 'validation_failed'],
    ['tool call: body is an array', 'POST', '/tools/echo/call', 'dev', { rawBody: '[]' }, 400, 'validation_failed'],
    ['tool call: body is null', 'POST', '/tools/echo/call', 'dev', { rawBody: 'null' }, 400, 'validation_failed'],
    ['decision request: missing tool', 'POST', '/api/approvals', 'dev', { body: { arguments: {} } }, 400, 'validation_failed'],
    ['decision request: tool a number', 'POST', '/api/approvals', 'dev', { body: { tool: 7 } }, 400, 'validation_failed'],
    ['approve: missing reason', 'POST', '/api/approvals/ID/approve', 'admin', { body: {} }, 400, 'validation_failed'],
    ['approve: empty reason', 'POST', '/api/approvals/ID/approve', 'admin', { body: { reason: '   ' } }, 400, 'validation_failed'],
    ['approve: reason too long', 'POST', '/api/approvals/ID/approve', 'admin', { body: { reason: 'x'.repeat(1001) } }, 400, 'validation_failed'],
    ['approve: reason not a string', 'POST', '/api/approvals/ID/approve', 'admin', { body: { reason: 42 } }, 400, 'validation_failed'],
    ['approve: unknown field', 'POST', '/api/approvals/ID/approve', 'admin', { body: { reason: 'ok', force: true } }, 400, 'validation_failed'],
    ['reject: not JSON', 'POST', '/api/approvals/ID/reject', 'admin', { rawBody: 'reason=nope' }, 400, 'invalid_json'],
    ['pending: limit not a number', 'GET', '/api/approvals/pending?limit=lots', 'admin', {}, 400, 'validation_failed'],
    ['pending: limit negative', 'GET', '/api/approvals/pending?limit=-1', 'admin', {}, 400, 'validation_failed'],
    ['pending: unknown query', 'GET', '/api/approvals/pending?status=all', 'admin', {}, 400, 'validation_failed'],
    ['get: wait too long', 'GET', '/api/approvals/ID?wait=61', 'dev', {}, 400, 'validation_failed'],
    ['get: wait not a number', 'GET', '/api/approvals/ID?wait=soon', 'dev', {}, 400, 'validation_failed'],
    ['unknown route', 'GET', '/api/nothing', 'dev', {}, 404, 'not_found'],
  ];

  for (const [name, method, path, who, payload, status, code] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      const before = JSON.stringify((await t.gateway.store.approvals.request(approvalId)));
      const res = await api(t.app, method, path.replace('ID', approvalId), { token: t.tokens[who], ...payload });
      expect(res.status).toBe(status);
      expect(res.body.error).toMatchObject({ code, message: expect.any(String) });
      expect(JSON.stringify((await t.gateway.store.approvals.request(approvalId)))).toBe(before);
    });
  }

  it('a 10 MB body gets 413 payload_too_large', async () => {
    const res = await api(t.app, 'POST', '/tools/echo/call', { token: t.tokens.dev, rawBody: JSON.stringify({ arguments: { blob: 'x'.repeat(10 * 1024 * 1024) } }) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect((await t.gateway.store.approvals.countByStatus())).toEqual({ pending: 1 });
  });

  it('a malformed Authorization header gets 401, not 500', async () => {
    const res = await api(t.app, 'GET', '/tools', { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
  });
});
