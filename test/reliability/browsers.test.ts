import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS_STYLE } from '../../src/http/openapi.js';
import { api, startTestGateway, type TestGateway } from '../helpers.js';
import { connectApprover } from '../ws-client.js';

const EVIL = 'https://evil.example';
const CONSOLE = 'https://console.example';
const MCP_HEADERS = { accept: 'application/json, text/event-stream' };
const INITIALIZE = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

/** Requests a pending HIGH call from dev and returns its id. */
async function pendingRequest(t: TestGateway): Promise<string> {
  const res = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'p', content: 'c' } }, headers: { prefer: 'respond-async' } });
  expect(res.status).toBe(202);
  return res.body.approval.id;
}

/** Opens an approver socket and resolves with its first frame, or with the HTTP refusal. */
async function upgrade(t: TestGateway, headers: Record<string, string>, token?: string): Promise<string> {
  return connectApprover(t.wsUrl, token, { headers }).then(
    async (socket) => {
      const first = await socket.next(() => true);
      socket.close();
      return first.type as string;
    },
    (err: Error) => err.message,
  );
}

/** A raw HTTP request, for headers fetch will not send (Host). */
function rawRequest(url: string, options: { method: string; headers: Record<string, string>; body?: string }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method, headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('browsers cannot ride along: TRUST_USER_HEADER behind a cookie-based SSO proxy', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ env: { TRUST_USER_HEADER: 'true', ALLOWED_ORIGINS: CONSOLE, RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses a cross-site POST approve carrying the proxy identity with 403 forbidden_origin; same-origin and listed origins pass', async () => {
    const id = await pendingRequest(t);
    const asAdmin = { 'x-user-id': 'admin_user' };
    const refused = [
      { ...asAdmin, origin: EVIL },
      { ...asAdmin, origin: EVIL, 'sec-fetch-site': 'cross-site' },
      { ...asAdmin, 'sec-fetch-site': 'cross-site' },
      { ...asAdmin, 'sec-fetch-site': 'same-site' },
      { ...asAdmin, origin: 'null' },
      { ...asAdmin, origin: `${t.url}.evil.example` },
      { ...asAdmin, origin: t.url, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of refused) {
      const res = await api(t.url, 'POST', `/api/approvals/${id}/approve`, { body: { reason: 'csrf' }, headers });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.body.error.code).toBe('forbidden_origin');
    }
    // A form post (text/plain) from the evil page is refused on its origin already.
    const form = await api(t.url, 'POST', `/api/approvals/${id}/approve`, { rawBody: '{"reason":"csrf"}', headers: { ...asAdmin, origin: EVIL, 'content-type': 'text/plain' } });
    expect(form.status).toBe(403);
    expect((await api(t.url, 'GET', `/api/approvals/${id}`, { token: t.tokens.admin })).body.approval.status).toBe('pending');

    const same = await api(t.url, 'POST', `/api/approvals/${id}/approve`, { body: { reason: 'from the gateway page' }, headers: { ...asAdmin, origin: t.url, 'sec-fetch-site': 'same-origin' } });
    expect(same.status).toBe(200);
    expect(same.body.approval.status).toBe('approved');
    const second = await pendingRequest(t);
    const listed = await api(t.url, 'POST', `/api/approvals/${second}/reject`, { body: { reason: 'from the console' }, headers: { ...asAdmin, origin: CONSOLE, 'sec-fetch-site': 'cross-site' } });
    expect(listed.status).toBe(200);
    expect(listed.body.approval.status).toBe('rejected');
    // A tool that is not a browser (no Origin, no Sec-Fetch-Site) is untouched.
    const third = await pendingRequest(t);
    expect((await api(t.url, 'POST', `/api/approvals/${third}/approve`, { body: { reason: 'cli' }, headers: asAdmin })).status).toBe(200);
  });

  it('refuses a cross-site WebSocket upgrade carrying the proxy identity; same-origin, listed and non-browser upgrades get hello', async () => {
    const asAdmin = { 'x-user-id': 'admin_user' };
    expect(await upgrade(t, { ...asAdmin, origin: EVIL })).toMatch(/403/);
    expect(await upgrade(t, { ...asAdmin, origin: 'null' })).toMatch(/403/);
    expect(await upgrade(t, { ...asAdmin, 'sec-fetch-site': 'cross-site' })).toMatch(/403/);
    expect(await upgrade(t, { ...asAdmin, origin: t.url })).toBe('hello');
    expect(await upgrade(t, { ...asAdmin, origin: CONSOLE })).toBe('hello');
    expect(await upgrade(t, asAdmin)).toBe('hello');
  });
});

describe('browsers cannot ride along: RBAC_ENABLED=false', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ env: { RBAC_ENABLED: 'false', ALLOWED_ORIGINS: CONSOLE, RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses cross-site anonymous tool calls, decision requests and approvals; same-origin and listed ones pass', async () => {
    const id = await pendingRequest(t);
    const cases = [
      { method: 'POST', path: '/tools/echo/call', body: { arguments: {} }, ok: 200 },
      { method: 'POST', path: '/api/approvals', body: { tool: 'write_file', arguments: { path: 'x', content: 'y' } }, ok: 202 },
      { method: 'POST', path: `/api/approvals/${id}/approve`, body: { reason: 'r' }, token: t.tokens.admin, ok: 200 },
    ];
    for (const c of cases) {
      const foreign = await api(t.url, c.method, c.path, { body: c.body, ...(c.token ? { token: c.token } : {}), headers: { origin: EVIL } });
      expect(foreign.status, c.path).toBe(403);
      expect(foreign.body.error.code).toBe('forbidden_origin');
      const blind = await api(t.url, c.method, c.path, { body: c.body, ...(c.token ? { token: c.token } : {}), headers: { 'sec-fetch-site': 'cross-site' } });
      expect(blind.status, c.path).toBe(403);
    }
    // Nothing ran and nothing was approved.
    expect((await t.gateway.store.approvals.countByStatus())).toEqual({ pending: 1 });
    const mcp = await api(t.url, 'POST', '/mcp', { body: INITIALIZE, headers: { ...MCP_HEADERS, origin: EVIL } });
    expect(mcp.status).toBe(403);

    for (const [i, c] of cases.entries()) {
      const origin = i % 2 ? CONSOLE : t.url;
      const res = await api(t.url, c.method, c.path, { body: c.body, ...(c.token ? { token: c.token } : {}), headers: { origin } });
      expect(res.status, `${c.path} from ${origin}`).toBe(c.ok);
    }
  });

  it('refuses a cross-site WebSocket upgrade before any credentials are sent', async () => {
    expect(await upgrade(t, { origin: EVIL })).toMatch(/403/);
    expect(await upgrade(t, { origin: EVIL }, t.tokens.admin)).toMatch(/403/);
    expect(await upgrade(t, { origin: t.url }, t.tokens.admin)).toBe('hello');
  });

  it('treats a DNS name in Host as foreign unless PUBLIC_URL or ALLOWED_ORIGINS names it (DNS rebinding)', async () => {
    const { port } = new URL(t.url);
    const rebound = await rawRequest(`${t.url}/tools/echo/call`, {
      method: 'POST',
      headers: { host: `rebind.example:${port}`, origin: `http://rebind.example:${port}`, 'content-type': 'application/json' },
      body: '{"arguments":{}}',
    });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body).error.code).toBe('forbidden_origin');
    const local = await rawRequest(`${t.url}/tools/echo/call`, {
      method: 'POST',
      headers: { host: `localhost:${port}`, origin: `http://localhost:${port}`, 'content-type': 'application/json' },
      body: '{"arguments":{}}',
    });
    expect(local.status).toBe(200);
  });
});

describe('browsers cannot ride along: PUBLIC_URL', () => {
  it('takes the origin of PUBLIC_URL as the gateway\u2019s own', async () => {
    const t = await startTestGateway({ env: { PUBLIC_URL: 'https://gate.example.com/base', RATE_LIMIT_PER_MINUTE: '0' } });
    try {
      const call = (origin: string) => api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: {} }, headers: { origin } });
      expect((await call('https://gate.example.com')).status).toBe(200);
      expect((await call('http://gate.example.com')).status).toBe(403);
      expect((await call('https://gate.example.com.evil.example')).status).toBe(403);
    } finally {
      await t.close();
    }
  });
});

describe('JSON bodies must say they are JSON', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ env: { RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 415 unsupported_media_type to a body without Content-Type: application/json, on every JSON endpoint', async () => {
    const id = await pendingRequest(t);
    const endpoints = [
      { path: '/tools/echo/call', body: '{"arguments":{}}', token: t.tokens.dev, ok: 200 },
      { path: '/api/approvals', body: '{"tool":"echo","arguments":{}}', token: t.tokens.dev, ok: 202 },
      { path: `/api/approvals/${id}/reject`, body: '{"reason":"r"}', token: t.tokens.admin, ok: 200 },
    ];
    const wrong = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json', 'application/json; charset=latin1', ''];
    for (const e of endpoints) {
      for (const type of wrong) {
        const res = await api(t.url, 'POST', e.path, { token: e.token, rawBody: e.body, headers: { 'content-type': type } });
        expect(res.status, `${e.path} ${type}`).toBe(415);
        expect(res.body.error.code).toBe('unsupported_media_type');
      }
    }
    const mcp = await api(t.url, 'POST', '/mcp', { token: t.tokens.dev, rawBody: JSON.stringify(INITIALIZE), headers: { ...MCP_HEADERS, 'content-type': 'text/plain' } });
    expect(mcp.status).toBe(415);
    expect(mcp.body.error.code).toBe('unsupported_media_type');
    // A chunked body without a type is refused too; a request with no body needs no type.
    const chunked = await fetch(`${t.url}/tools/echo/call`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.tokens.dev}` },
      body: new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('{"arguments":{}}')), c.close()) }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(415);
    expect((await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev })).status).toBe(200);
    for (const [i, type] of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset=UTF-8'].entries()) {
      const e = endpoints[i]!;
      const res = await api(t.url, 'POST', e.path, { token: e.token, rawBody: e.body, headers: { 'content-type': type } });
      expect(res.status, `${e.path} ${type}`).toBe(e.ok);
    }
  });
});

describe('security headers on every response', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ env: { RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const expectSecured = (headers: Headers | Record<string, string | string[] | undefined>, what: string) => {
    const get = (name: string) => (headers instanceof Headers ? headers.get(name) : (headers[name] as string | undefined)) ?? null;
    expect(get('x-content-type-options'), what).toBe('nosniff');
    expect(get('referrer-policy'), what).toBe('no-referrer');
    const csp = get('content-security-policy');
    expect(csp, what).toMatch(/frame-ancestors 'none'/);
    expect(csp, what).toMatch(/^default-src 'none'/);
    expect(csp, what).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    return csp!;
  };

  it('sends nosniff, no-referrer and a CSP with frame-ancestors none on JSON, errors, text, the docs page, MCP and refused upgrades', async () => {
    const id = await pendingRequest(t);
    const kinds: [string, Promise<{ status: number; headers: Headers }>, number][] = [
      ['health', api(t.url, 'GET', '/health'), 200],
      ['JSON', api(t.url, 'GET', '/tools', { token: t.tokens.dev }), 200],
      ['tool call', api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: {} } }), 200],
      ['decision', api(t.url, 'POST', `/api/approvals/${id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } }), 200],
      ['401', api(t.url, 'GET', '/tools', { token: 'tg_wrong' }), 401],
      ['400', api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, rawBody: '{' }), 400],
      ['404 route', api(t.url, 'GET', '/nowhere'), 404],
      ['415', api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, rawBody: '{}', headers: { 'content-type': 'text/plain' } }), 415],
      ['403 origin', api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: {}, headers: { origin: EVIL } }), 403],
      ['413', api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, rawBody: 'x'.repeat(1024 * 1024 + 1) }), 413],
      ['openapi', api(t.url, 'GET', '/openapi.json'), 200],
      ['metrics', api(t.url, 'GET', '/metrics'), 200],
      ['MCP', api(t.url, 'POST', '/mcp', { token: t.tokens.dev, body: INITIALIZE, headers: MCP_HEADERS }), 200],
      ['MCP error', api(t.url, 'GET', '/mcp', { token: t.tokens.dev, headers: MCP_HEADERS }), 400],
      ['not an upgrade', api(t.url, 'GET', '/ws/approvals', { token: t.tokens.admin }), 404],
    ];
    for (const [what, pending, status] of kinds) {
      const res = await pending;
      expect(res.status, what).toBe(status);
      const csp = expectSecured(res.headers, what);
      expect(csp, what).toBe("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    }
    const { port } = new URL(t.url);
    const refusedUpgrade = await rawRequest(`${t.url}/ws/approvals`, {
      method: 'GET',
      headers: { host: `127.0.0.1:${port}`, origin: EVIL, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    expect(refusedUpgrade.status).toBe(403);
    expectSecured(refusedUpgrade.headers, 'refused upgrade');
  });

  it('gives the docs page a CSP that allows exactly its inline styles, by hash, and nothing else', async () => {
    const res = await fetch(`${t.url}/docs`);
    const html = await res.text();
    expect(res.status).toBe(200);
    const csp = expectSecured(res.headers, 'docs');
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
    expect(styles).toEqual([DOCS_STYLE]);
    for (const style of styles) expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    // Nothing else on the page would need the policy to allow it.
    expect(html).not.toMatch(/<script|\sstyle=|\son[a-z]+=|<img|<iframe|<link/i);
    expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'; /);
  });
});
