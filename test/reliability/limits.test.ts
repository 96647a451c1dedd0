import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { jsonTooDeep } from '../../src/http/validation.js';
import { api, startTestGateway, type TestGateway } from '../helpers.js';
import { connectApprover } from '../ws-client.js';

const MCP_HEADERS = { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

async function withGateway(env: Record<string, string>, fn: (t: TestGateway) => Promise<void>) {
  const t = await startTestGateway({ env });
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** JSON text of `depth` objects inside one another (built as text: serializing it would overflow the stack). */
const nested = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;

describe('limits that hold: the per-token rate limit', () => {
  it('keys on the token, not on how the Authorization header is spelled', async () => {
    await withGateway({ RATE_LIMIT_PER_MINUTE: '6', AUTH_FAILURE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      const spellings = [`Bearer ${t.tokens.guest}`, `bearer ${t.tokens.guest}`, `BEARER ${t.tokens.guest}`, `Bearer   ${t.tokens.guest}`, `Bearer ${t.tokens.guest} `, `bEaReR ${t.tokens.guest}`];
      for (const authorization of spellings) {
        expect((await api(t.url, 'POST', '/tools/echo/call', { body: { arguments: {} }, headers: { authorization } })).status).toBe(200);
      }
      for (const authorization of [`Bearer  ${t.tokens.guest}`, `BeArEr ${t.tokens.guest}`, `Bearer ${t.tokens.guest}  `]) {
        const res = await api(t.url, 'POST', '/tools/echo/call', { body: { arguments: {} }, headers: { authorization } });
        expect(res.status, authorization.slice(0, 12)).toBe(429);
        expect(res.body.error.code).toBe('rate_limited');
      }
      // Decision-only requests spend the same budget, auto-approved or not.
      expect((await api(t.url, 'POST', '/api/approvals', { token: t.tokens.guest, body: { tool: 'echo', arguments: {} } })).status).toBe(429);
      expect((await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: {} } })).status).toBe(200);
    });
  });

  it('counts every message of an MCP JSON-RPC batch', async () => {
    await withGateway({ RATE_LIMIT_PER_MINUTE: '10', AUTH_FAILURE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      const init = await api(t.url, 'POST', '/mcp', { token: t.tokens.dev, body: INITIALIZE, headers: MCP_HEADERS });
      expect(init.status).toBe(200);
      const headers = { ...MCP_HEADERS, 'mcp-session-id': init.headers.get('mcp-session-id')! };
      const batch = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: from + i, method: 'tools/list', params: {} }));
      const five = await api(t.url, 'POST', '/mcp', { token: t.tokens.dev, body: batch(5, 10), headers });
      expect(five.status).toBe(200);
      // 1 + 5 spent of 10: a batch of 5 more is over, and spends nothing.
      const over = await api(t.url, 'POST', '/mcp', { token: t.tokens.dev, body: batch(5, 20), headers });
      expect(over.status).toBe(429);
      expect(over.body.error.code).toBe('rate_limited');
      expect((await api(t.url, 'POST', '/mcp', { token: t.tokens.dev, body: batch(4, 30), headers })).status).toBe(200);
      expect((await api(t.url, 'POST', '/mcp', { token: t.tokens.dev, body: batch(1, 40), headers })).status).toBe(429);
    });
  });

  it('keys anonymous callers (RBAC off) on their address', async () => {
    await withGateway({ RBAC_ENABLED: 'false', RATE_LIMIT_PER_MINUTE: '3' }, async (t) => {
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await api(t.url, 'POST', '/tools/echo/call', { body: { arguments: {} } })).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
    });
  });
});

describe('limits that hold: failed authentication and client addresses', () => {
  it('counts failed authentication on /health too, and then refuses the address even a good token; a probe without credentials still answers', async () => {
    await withGateway({ AUTH_FAILURE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      for (let i = 0; i < 3; i++) expect((await api(t.url, 'GET', '/health', { token: `tg_guess${i}` })).status).toBe(401);
      const blocked = await api(t.url, 'GET', '/health', { token: 'tg_guess3' });
      expect(blocked.status).toBe(429);
      expect(blocked.body.error.code).toBe('rate_limited');
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await api(t.url, 'GET', '/health', { token: t.tokens.admin })).status).toBe(429);
      expect((await api(t.url, 'GET', '/tools', { token: t.tokens.admin })).status).toBe(429);
      expect((await api(t.url, 'GET', '/health')).status).toBe(200);
    });
  });

  it('ignores X-Forwarded-For without TRUST_PROXY, even with TRUST_USER_HEADER on', async () => {
    await withGateway({ TRUST_USER_HEADER: 'true', AUTH_FAILURE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      for (let i = 0; i < 3; i++) {
        expect((await api(t.url, 'GET', '/tools', { token: 'tg_wrong', headers: { 'x-forwarded-for': `10.0.0.${i}` } })).status).toBe(401);
      }
      // A fresh spoofed address buys nothing: the socket's address is what failed.
      expect((await api(t.url, 'GET', '/tools', { token: 'tg_wrong', headers: { 'x-forwarded-for': '10.0.0.99' } })).status).toBe(429);
      const socket = await connectApprover(t.wsUrl, t.tokens.admin, { headers: { 'x-forwarded-for': '10.0.0.98' } }).then(
        (s) => (s.close(), 'opened'),
        (err: Error) => err.message,
      );
      expect(socket).toMatch(/429/);
    });
  });

  it('with TRUST_PROXY=1 takes the right-most X-Forwarded-For entry, never the client-written left-most one', async () => {
    await withGateway({ TRUST_PROXY: '1', AUTH_FAILURE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      const from = (xff: string, token = 'tg_wrong') => api(t.url, 'GET', '/tools', { token, headers: { 'x-forwarded-for': xff } });
      for (let i = 0; i < 3; i++) expect((await from(`198.51.100.${i}, 10.1.1.1`)).status).toBe(401);
      expect((await from('198.51.100.77, 10.1.1.1')).status).toBe(429);
      expect((await from('10.1.1.2, 10.1.1.1')).status).toBe(429);
      expect((await from('10.1.1.1, 10.1.1.2', t.tokens.admin)).status).toBe(200);
      expect((await from('10.1.1.2', t.tokens.admin)).status).toBe(200);
    });
  });

  it('with TRUST_PROXY=2 takes the second entry from the right, and the socket when the header is shorter than that', async () => {
    await withGateway({ TRUST_PROXY: '2', AUTH_FAILURE_LIMIT_PER_MINUTE: '2', RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      const from = (xff: string, token = 'tg_wrong') => api(t.url, 'GET', '/tools', { token, headers: { 'x-forwarded-for': xff } });
      for (let i = 0; i < 2; i++) expect((await from(`203.0.113.${i}, 10.2.2.2, 10.9.9.${i}`)).status).toBe(401);
      expect((await from('203.0.113.50, 10.2.2.2, 10.9.9.50')).status).toBe(429);
      expect((await from('10.2.2.3, 10.9.9.1', t.tokens.admin)).status).toBe(200);
      // One entry only: it did not come through both proxies, so the socket address is used.
      for (let i = 0; i < 2; i++) expect((await from(`10.3.3.${i}`)).status).toBe(401);
      expect((await from('10.3.3.9', t.tokens.admin)).status).toBe(429);
    });
  });
});

describe('limits that hold: pending requests per requester', () => {
  it('lets one requester hold at most APPROVAL_MAX_PENDING_PER_USER of 20 concurrent requests, and others still get theirs', async () => {
    await withGateway({ APPROVAL_MAX_PENDING: '10', APPROVAL_MAX_PENDING_PER_USER: '3', RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      const calls = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2
            ? api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: `p${i}`, content: 'x' } }, headers: { prefer: 'respond-async' } })
            : api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: { path: `d${i}` } } }),
        ),
      );
      expect(calls.filter((c) => c.status === 202)).toHaveLength(3);
      const refused = calls.filter((c) => c.status === 429);
      expect(refused).toHaveLength(17);
      for (const r of refused) {
        expect(r.body.error).toMatchObject({ code: 'too_many_pending', message: expect.stringMatching(/dev_user already has 3 pending/) });
        expect(r.body).toMatchObject({ limit: 'per_user', max_pending_per_user: 3 });
      }
      expect((await t.gateway.store.approvals.countByStatus())).toEqual({ pending: 3 });
      for (let i = 0; i < 3; i++) {
        const mine = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.admin, body: { arguments: { path: `a${i}`, content: 'x' } }, headers: { prefer: 'respond-async' } });
        expect(mine.status).toBe(202);
      }
      // Cancelling one frees a slot for its requester.
      await api(t.url, 'DELETE', `/api/approvals/${calls.find((c) => c.status === 202)!.body.approval.id}`, { token: t.tokens.dev });
      expect((await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: {} } })).status).toBe(202);
    });
  });

  it('names the global cap when that is the one hit', async () => {
    await withGateway({ APPROVAL_MAX_PENDING: '2', APPROVAL_MAX_PENDING_PER_USER: '2', RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      for (const token of [t.tokens.dev, t.tokens.admin]) {
        expect((await api(t.url, 'POST', '/api/approvals', { token, body: { tool: 'write_file', arguments: {} } })).status).toBe(202);
      }
      const full = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.admin, body: { tool: 'write_file', arguments: {} } });
      expect(full.status).toBe(429);
      expect(full.body).toMatchObject({ error: { code: 'too_many_pending' }, limit: 'global', max_pending: 2 });
    });
  });
});

describe('limits that hold: auto-approved decision-only requests', () => {
  it('keep a SHA-256 and size of their arguments, not the arguments, in the request and its audit event', async () => {
    await withGateway({ RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      const args = { message: 'x'.repeat(200 * 1024) };
      const json = JSON.stringify(args);
      const digest = { sha256: createHash('sha256').update(json).digest('hex'), bytes: Buffer.byteLength(json) };
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.guest, body: { tool: 'echo', arguments: args } });
        expect(res.status).toBe(202);
        expect(res.body.approval).toMatchObject({ status: 'approved', arguments: digest });
        ids.push(res.body.approval.id);
      }
      const shown = await api(t.url, 'GET', `/api/approvals/${ids[0]}`, { token: t.tokens.guest });
      expect(shown.body.approval.arguments).toEqual(digest);
      const [stored] = await t.query<{ n: number | string }>(
        `select (select coalesce(sum(length(arguments)), 0) from approval_requests) + (select coalesce(sum(length(details)), 0) from audit_events) as n`,
      );
      // 20 × 200 KB sent; what is kept is a few hundred bytes each.
      expect(Number(stored!.n)).toBeLessThan(20 * 1024);
      // Requests that wait for an approver keep their arguments: the approver must see them.
      const pending = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: { path: 'keep/me' } } });
      expect(pending.body.approval.arguments).toEqual({ path: 'keep/me' });
    });
  });
});

describe('limits that hold: JSON nesting', () => {
  it('answers 400 invalid_json to bodies nested deeper than 64 levels on every JSON endpoint, /mcp included, and accepts 64', async () => {
    await withGateway({ RATE_LIMIT_PER_MINUTE: '0' }, async (t) => {
      const init = await api(t.url, 'POST', '/mcp', { token: t.tokens.dev, body: INITIALIZE, headers: MCP_HEADERS });
      const mcpHeaders = { ...MCP_HEADERS, 'mcp-session-id': init.headers.get('mcp-session-id')! };
      for (const depth of [65, 4100, 100_000]) {
        const deep = nested(depth);
        const cases = [
          api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, rawBody: `{"arguments":{"x":${deep}}}` }),
          api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, rawBody: `{"tool":"echo","arguments":{"x":${deep}}}` }),
          api(t.url, 'POST', '/api/approvals/00000000/approve', { token: t.tokens.admin, rawBody: `{"reason":${deep}}` }),
          api(t.url, 'POST', '/mcp', { token: t.tokens.dev, rawBody: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"x":${deep}}}}`, headers: mcpHeaders }),
        ];
        for (const res of await Promise.all(cases)) {
          expect(res.status, `depth ${depth}`).toBe(400);
          expect(res.body.error).toMatchObject({ code: 'invalid_json', message: expect.stringMatching(/deeper than 64 levels/) });
        }
      }
      // Brackets inside strings are text, not nesting.
      const brackets = '['.repeat(1000);
      expect((await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'echo', arguments: { s: brackets, 'k[{': '\\"[' } } })).status).toBe(202);
      // 64 levels in all is the limit: the body and arguments objects are 2 of them.
      const fits = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, rawBody: `{"tool":"echo","arguments":{"x":${nested(62)}}}` });
      expect(fits.status).toBe(202);
      expect((await api(t.url, 'GET', '/health')).body.status).toBe('ok');
    });
  });

  it('answers a WebSocket frame nested deeper than 64 levels with an error frame and keeps the socket', async () => {
    await withGateway({}, async (t) => {
      const approver = await connectApprover(t.wsUrl, t.tokens.admin);
      try {
        await approver.next((f) => f.type === 'hello');
        approver.ws.send(`{"type":"list","ref":"deep","x":${nested(5000)}}`);
        expect(await approver.next((f) => f.type === 'error')).toMatchObject({ code: 'bad_message', message: expect.stringMatching(/deeper than 64 levels/) });
        approver.ws.send(JSON.stringify({ type: 'list', ref: 'after' }));
        expect((await approver.next((f) => f.ref === 'after')).type).toBe('pending');
      } finally {
        approver.close();
      }
    });
  });
});

describe('limits that hold: the nesting scan and the new settings', () => {
  const depthOf = (v: unknown): number => (v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v).map(depthOf)) : 0);

  it('measures the nesting of any JSON text exactly, brackets, quotes and backslashes inside strings included', () => {
    const tricky = fc.stringMatching(/^[\[\]{}"\\a]{0,40}$/);
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, tricky, fc.integer(), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(tricky, tie('node'), { maxKeys: 3 })),
    })).node;
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 6 }), (v, max) => jsonTooDeep(JSON.stringify(v), max) === depthOf(v) > max),
      { seed: 20261123, numRuns: 2000 },
    );
  });

  it('refuses bad ALLOWED_ORIGINS, PUBLIC_URL, TRUST_PROXY and APPROVAL_MAX_PENDING_PER_USER values, naming the variable', () => {
    const bad = [
      { ALLOWED_ORIGINS: 'https://console.example/' },
      { ALLOWED_ORIGINS: '*' },
      { ALLOWED_ORIGINS: 'https://a.example,console.example' },
      { PUBLIC_URL: 'ftp://gate.example' },
      { TRUST_PROXY: '-1' },
      { TRUST_PROXY: 'yes' },
      { APPROVAL_MAX_PENDING_PER_USER: '0' },
    ];
    for (const env of bad) {
      const name = Object.keys(env)[0]!;
      expect(() => loadConfig(env), name).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(new RegExp(name));
    }
    const config = loadConfig({ ALLOWED_ORIGINS: 'https://a.example, http://localhost:6274', TRUST_PROXY: '2', APPROVAL_MAX_PENDING: '50' });
    expect(config).toMatchObject({ allowedOrigins: ['https://a.example', 'http://localhost:6274'], trustProxy: 2, maxPendingPerUser: 25 });
    expect(loadConfig({ APPROVAL_MAX_PENDING: '5' }).maxPendingPerUser).toBe(5);
    expect(loadConfig({ APPROVAL_MAX_PENDING: '500' }).maxPendingPerUser).toBe(250);
  });
});
