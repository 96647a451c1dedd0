import { Hono } from 'hono';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateLimit, TokenBuckets } from '../../src/http/rate-limit.js';
import { AppError } from '../../src/core/errors.js';
import { errorResponse } from '../../src/http/error-response.js';
import { silentLogger } from '../../src/logger.js';
import { loadConfig } from '../../src/config.js';
import { api, eventually, ON_POSTGRES, startTestGateway, type TestGateway } from '../helpers.js';
import { connectApprover } from '../ws-client.js';

const activeTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('floods: pending limit, body limit and rate limits', () => {
  let t: TestGateway;
  beforeAll(async () => {
    // The gateway's clock stands still: the buckets refill with time (one call per 1.5 s at 40 a
    // minute), and a run slow enough would otherwise earn the 41st call its token.
    const frozen = Date.now();
    t = await startTestGateway({
      clock: { now: () => frozen },
      env: { APPROVAL_MAX_PENDING: '5', RATE_LIMIT_PER_MINUTE: '40', AUTH_FAILURE_LIMIT_PER_MINUTE: '3', TRUST_USER_HEADER: 'true', TRUST_PROXY: '1', BODY_LIMIT_BYTES: '1048576' },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('accepts exactly APPROVAL_MAX_PENDING of 25 concurrent requests, answers the rest 429, and the table does not grow', async () => {
    const calls = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.admin, body: { arguments: { path: `p${i}`, content: 'x' } }, headers: { prefer: 'respond-async' } }),
      ),
    );
    const statuses = calls.map((c) => c.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    for (const c of calls.filter((c) => c.status === 429)) expect(c.body.error.code).toBe('too_many_pending');
    const more = await api(t.url, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: {} } });
    expect(more.status).toBe(429);
    expect((await t.gateway.store.approvals.countByStatus())).toEqual({ pending: 5 });
    for (const c of calls.filter((c) => c.status === 202)) {
      await api(t.url, 'DELETE', `/api/approvals/${c.body.approval.id}`, { token: t.tokens.admin });
    }
    expect(await t.gateway.approvals.views.countPending()).toBe(0);
  });

  it('answers 413 payload_too_large to a body one byte over 1 MB, with a length or chunked', async () => {
    const big = JSON.stringify({ arguments: { content: 'x'.repeat(1024 * 1024) } });
    const res = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.admin, rawBody: big });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
        controller.close();
      },
    });
    const chunked = await fetch(`${t.url}/api/approvals`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.tokens.admin}`, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await chunked.json()).error.code).toBe('payload_too_large');
    const fits = await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.admin, body: { arguments: { message: 'x'.repeat(1000 * 1000) } } });
    expect(fits.status).toBe(200);
  });

  it('limits tool calls per token: the 41st call in a minute gets 429 rate_limited with Retry-After, other tokens still pass', async () => {
    const results = [];
    for (let i = 0; i < 45; i++) results.push(await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.guest, body: { arguments: {} } }));
    // Earlier tests in this file spent none of the guest's budget.
    expect(results.slice(0, 40).every((r) => r.status === 200)).toBe(true);
    for (const r of results.slice(40)) {
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('rate_limited');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect((await api(t.url, 'POST', '/tools/echo/call', { token: t.tokens.dev, body: { arguments: {} } })).status).toBe(200);
    // Reading is not a tool call.
    expect((await api(t.url, 'GET', '/tools', { token: t.tokens.guest })).status).toBe(200);
  });

  it('limits failed authentication per client address: after 3 failures the address gets 429 with Retry-After, others do not', async () => {
    const from = (address: string, token: string) => api(t.url, 'GET', '/tools', { token, headers: { 'x-forwarded-for': address } });
    for (let i = 0; i < 3; i++) expect((await from('10.9.9.9', 'tg_wrong')).status).toBe(401);
    const blocked = await from('10.9.9.9', 'tg_wrong');
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('rate_limited');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Even a good token from that address waits: the address is what guessed.
    expect((await from('10.9.9.9', t.tokens.admin)).status).toBe(429);
    expect((await from('10.9.9.10', t.tokens.admin)).status).toBe(200);
    expect((await api(t.url, 'GET', '/health')).status).toBe(200);
  });

  it('counts refused approver sockets as failed authentication: after 3, the upgrade itself gets 429', async () => {
    const headers = { 'x-forwarded-for': '10.7.7.7' };
    for (let i = 0; i < 3; i++) {
      const socket = await connectApprover(t.wsUrl, 'tg_wrong', { headers });
      expect((await socket.closed).code).toBe(4401);
    }
    const refused = await connectApprover(t.wsUrl, t.tokens.admin, { headers }).then(
      (s) => {
        s.close();
        return 'opened';
      },
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/429/);
    const other = await connectApprover(t.wsUrl, t.tokens.admin, { headers: { 'x-forwarded-for': '10.7.7.8' } });
    expect((await other.next(() => true)).type).toBe('hello');
    other.close();
  });
});

describe('rate limiter internals', () => {
  it('refills lazily and gives a Retry-After in whole seconds', () => {
    let now = 0;
    const buckets = new TokenBuckets(60, 100, () => now);
    for (let i = 0; i < 60; i++) expect(buckets.take('k')).toBe(0);
    expect(buckets.take('k')).toBe(1);
    now += 1000;
    expect(buckets.take('k')).toBe(0);
    expect(buckets.take('k')).toBe(1);
    now += 60_000;
    expect(buckets.blockedFor('k')).toBe(0);
  });

  it('keeps at most maxKeys entries whatever the number of addresses (10,000 addresses, 100 keys)', async () => {
    const limiter = rateLimit({ toolCallsPerMinute: 5, authFailuresPerMinute: 2, trustProxy: 1, maxKeys: 100 });
    const app = new Hono();
    app.use(limiter.middleware);
    app.post('/tools/:name/call', (c) => (c.req.header('authorization') === 'Bearer good' ? c.json({ ok: true }) : Promise.reject(new AppError('unauthorized', 'no'))));
    app.onError((err, c) => errorResponse(err, c, silentLogger));
    for (let i = 0; i < 10_000; i++) {
      const res = await app.request('/tools/x/call', { method: 'POST', headers: { 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, authorization: `Bearer bad${i}` } });
      expect(res.status).toBe(401);
    }
    expect(limiter.sizes().authFailures).toBeLessThanOrEqual(100);
    expect(limiter.sizes().toolCalls).toBeLessThanOrEqual(100);
  });
});

describe('floods: 1,000 WebSocket connections opened and dropped', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ authTimeoutMs: 60_000 });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('leaves no sessions, bus listeners, waiters or timers behind', async () => {
    const { gateway } = t;
    const before = { bus: gateway.bus.counts(), approvals: gateway.approvals.counts(), timers: activeTimers() };
    let opened = 0;
    for (let batch = 0; batch < 10; batch++) {
      const sockets = await Promise.all(
        Array.from({ length: 100 }, (_, i) => {
          // A third authenticate on upgrade, a third by message, a third never do (their auth timer must go too).
          const kind = (batch * 100 + i) % 3;
          const ws = new WebSocket(t.wsUrl, kind === 0 ? { headers: { authorization: `Bearer ${t.tokens.admin}` } } : {});
          return new Promise<WebSocket>((resolve, reject) => {
            ws.once('error', reject);
            ws.once('open', () => {
              if (kind === 1) ws.send(JSON.stringify({ type: 'auth', token: t.tokens.admin }));
              resolve(ws);
            });
          });
        }),
      );
      opened += sockets.length;
      await eventually(() => gateway.hub.connections() === 100);
      // Half close politely, half just vanish.
      sockets.forEach((ws, i) => (i % 2 ? ws.terminate() : ws.close(1000)));
      await eventually(() => gateway.hub.connections() === 0);
    }
    expect(opened).toBe(1000);
    expect(gateway.hub.online()).toBe(0);
    expect(gateway.bus.counts()).toEqual(before.bus);
    expect(gateway.approvals.counts()).toEqual(before.approvals);
    // On PostgreSQL each pooled connection the flood's authentications opened keeps one timer (its
    // max lifetime), at most DATABASE_POOL_SIZE of them: bounded, not a leak.
    const poolTimers = ON_POSTGRES ? loadConfig({}).databasePoolSize : 0;
    await eventually(() => activeTimers() <= before.timers + poolTimers);
    // And the hub still works.
    const res = await api(t.url, 'GET', '/health');
    expect(res.body).toMatchObject({ status: 'ok', approvers_online: 0 });
  }, 60_000);
});
