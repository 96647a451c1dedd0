import { describe, expect, it } from 'vitest';
import type { ReceiverConfig } from '../../src/notify/notify.schemas.js';
import { verifyToolgateSignature } from '../../src/notify/signature.js';
import { api, eventually, fixtureToolgateFile, startTestGateway, type TestGateway } from '../helpers.js';
import { TestReceiver, type Received } from '../kit/receiver.js';

const SECRET = 'a-receiver-secret-of-some-length';
/** Retries a few tens of milliseconds apart, so a receiver that is down for a while is retried often meanwhile. */
const FAST_RETRY = { maxAttempts: 100, minSeconds: 0.02, maxSeconds: 0.1 };

function receiver(name: string, url: string, extra: Partial<ReceiverConfig> = {}): ReceiverConfig {
  return {
    name,
    url,
    format: 'json',
    secret: SECRET,
    events: ['approval.requested', 'approval.resolved', 'approval.escalated'],
    sensitivity: ['HIGH', 'CRITICAL'],
    timeoutSeconds: 2,
    concurrency: 4,
    retry: FAST_RETRY,
    ...extra,
  };
}

async function gatewayWith(receivers: ReceiverConfig[], env: Record<string, string> = {}): Promise<TestGateway> {
  return startTestGateway({
    env: { APPROVAL_POLLING_INTERVAL: '0.05', PUBLIC_URL: 'https://toolgate.example.com', ...env },
    file: fixtureToolgateFile({}, { notify: receivers }),
  });
}

async function ask(t: TestGateway, tool = 'write_file', args: Record<string, unknown> = { path: 'x', content: 'abc' }): Promise<string> {
  const made = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool, arguments: args } });
  expect(made.status).toBe(202);
  return made.body.approval.id as string;
}

const events = (r: TestReceiver, type?: string) => r.received.filter((x) => x.json && (type === undefined || x.json.type === type));

function expectSigned(got: Received) {
  expect(verifyToolgateSignature(SECRET, got.headers['x-toolgate-signature'] as string, got.body, Date.now())).toBe(true);
  expect(verifyToolgateSignature('another-secret-of-some-length', got.headers['x-toolgate-signature'] as string, got.body, Date.now())).toBe(false);
  expect(got.headers['idempotency-key']).toBe(got.json.id);
  expect(got.headers['x-toolgate-event']).toBe(got.json.type);
}

describe('signed webhooks from the outbox', () => {
  it('notifies every matching receiver once, with a valid signature, and no receiver that does not match', async () => {
    const [a, b, lowOnly] = await Promise.all([TestReceiver.start(), TestReceiver.start(), TestReceiver.start()]);
    const t = await gatewayWith([receiver('a', a.url), receiver('b', b.url), receiver('low-only', lowOnly.url, { sensitivity: ['LOW'] })]);
    try {
      const id = await ask(t);
      for (const r of [a, b]) await eventually(() => events(r, 'approval.requested').length === 1);
      for (const r of [a, b]) {
        const [got] = events(r, 'approval.requested');
        expectSigned(got!);
        expect(got!.method).toBe('POST');
        expect(got!.json.approval).toMatchObject({ id, tool: 'write_file', sensitivity: 'HIGH', status: 'pending', requester: { id: 'dev_user' }, arguments: { path: 'x', content: 'abc' } });
        expect(got!.json.consoleUrl).toBe(`https://toolgate.example.com/console#/r/${id}`);
      }
      // One event, one id, whoever receives it.
      expect(events(a, 'approval.requested')[0]!.json.id).toBe(events(b, 'approval.requested')[0]!.json.id);

      const decided = await api(t.app, 'POST', `/api/approvals/${id}/approve`, { token: t.tokens.admin, body: { reason: 'fine' } });
      expect(decided.status).toBe(200);
      for (const r of [a, b]) await eventually(() => events(r, 'approval.resolved').length === 1);
      const resolved = events(a, 'approval.resolved')[0]!;
      expectSigned(resolved);
      expect(resolved.json.approval).toMatchObject({ status: 'approved', decisions: [{ approver: 'admin_user', verdict: 'approve', reason: 'fine' }] });
      // Nothing else comes: each receiver got exactly the two events.
      await eventually(async () => Number((await t.query(`select count(*) as n from notify_deliveries where status = 'delivered'`))[0]!.n) === 4);
      expect(events(a)).toHaveLength(2);
      expect(events(b)).toHaveLength(2);
      expect(lowOnly.received).toHaveLength(0);
    } finally {
      await t.close();
      await Promise.all([a.close(), b.close(), lowOnly.close()]);
    }
  });

  it('redacts secret-looking arguments in what it sends, as the audit log does', async () => {
    const a = await TestReceiver.start();
    const t = await gatewayWith([receiver('a', a.url)]);
    try {
      await ask(t, 'write_file', { path: 'x', content: 'abc', api_key: 'sk-live-1234567890abcdef' });
      await eventually(() => events(a, 'approval.requested').length === 1);
      const got = events(a, 'approval.requested')[0]!;
      expect(got.body).not.toContain('sk-live-1234567890abcdef');
      expect(got.json.approval.arguments.api_key).toBe('[REDACTED]');
    } finally {
      await t.close();
      await a.close();
    }
  });

  it('gets every delivery to a receiver that was down for a while once it is back, in order per request, never one attempt id twice', async () => {
    const down = await TestReceiver.start();
    const up = await TestReceiver.start();
    await down.stop();
    const t = await gatewayWith([receiver('down', down.url), receiver('up', up.url)]);
    try {
      const ids = [await ask(t), await ask(t), await ask(t)];
      await api(t.app, 'POST', `/api/approvals/${ids[0]}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } });
      await api(t.app, 'POST', `/api/approvals/${ids[1]}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
      // The receiver that is up got all five at once: the dead one held up nothing.
      await eventually(() => events(up).length === 5);
      // Meanwhile the one that is down is being retried.
      await eventually(async () => {
        const rows = await t.query<{ attempts: number; status: string; last_error: string | null }>(`select attempts, status, last_error from notify_deliveries where receiver = 'down' and event_type = 'approval.requested'`);
        return rows.length === 3 && rows.every((r) => r.status === 'pending' && r.attempts >= 2 && r.last_error !== null);
      });
      await down.restart();
      await eventually(() => events(down).length === 5, 10_000);
      for (const id of ids) {
        const types = events(down).filter((r) => r.json.approval.id === id).map((r) => r.json.type);
        expect(types).toEqual(id === ids[2] ? ['approval.requested'] : ['approval.requested', 'approval.resolved']);
      }
      const attemptIds = down.received.map((r) => r.headers['x-toolgate-attempt']);
      expect(new Set(attemptIds).size).toBe(attemptIds.length);
      // A retried delivery keeps its delivery id and event id; its attempt number went up. (The
      // resolutions waited behind their requests' first events, so some go out at their first attempt.)
      for (const r of events(down, 'approval.requested')) expect(r.headers['x-toolgate-attempt']).toMatch(new RegExp(`^${r.headers['x-toolgate-delivery']}\\.([2-9]|\\d\\d+)$`));
      // Each delivery is recorded delivered once its answer is in.
      await eventually(async () => Number((await t.query(`select count(*) as n from notify_deliveries where status <> 'delivered'`))[0]!.n) === 0);
    } finally {
      await t.close();
      await Promise.all([down.close(), up.close()]);
    }
  });

  it('keeps a slow receiver from delaying a decision, the waiting caller or another receiver', async () => {
    const slow = await TestReceiver.start();
    slow.answer = () => ({ status: 200, delayMs: 3000 });
    const fast = await TestReceiver.start();
    const t = await gatewayWith([receiver('slow', slow.url, { timeoutSeconds: 5, concurrency: 1 }), receiver('fast', fast.url)]);
    try {
      const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'x', content: 'abc' } } });
      const id = await eventually(async () => (await api(t.app, 'GET', '/api/approvals/pending', { token: t.tokens.admin })).body.pending_approvals[0]?.id as string | undefined);
      await eventually(() => slow.received.length === 1);
      const started = Date.now();
      const decided = await api(t.url, 'POST', `/api/approvals/${id}/approve`, { token: t.tokens.admin, body: { reason: 'go' } });
      expect(decided.status).toBe(200);
      expect((await call).status).toBe(200);
      await eventually(() => events(fast, 'approval.resolved').length === 1);
      // All of that while the slow receiver still sits on its first delivery (it answers after 3 s).
      expect(Date.now() - started).toBeLessThan(2500);
      expect(slow.received).toHaveLength(1);
    } finally {
      await t.close();
      await Promise.all([slow.close(), fast.close()]);
    }
  });

  it('does not follow a redirect, and marks a delivery dead after its last attempt', async () => {
    const target = await TestReceiver.start();
    const redirecting = await TestReceiver.start();
    redirecting.answer = () => ({ status: 307, headers: { location: `${target.url}/elsewhere` } });
    const failing = await TestReceiver.start();
    failing.answer = () => ({ status: 503 });
    const t = await gatewayWith([receiver('redirecting', redirecting.url), receiver('failing', failing.url, { retry: { maxAttempts: 3, minSeconds: 0.01, maxSeconds: 0.02 } })]);
    try {
      await ask(t);
      const dead = await eventually(async () => {
        const rows = await t.query<{ receiver: string; attempts: number; last_status: number; last_error: string }>(`select receiver, attempts, last_status, last_error from notify_deliveries where status = 'dead' order by receiver`);
        return rows.length === 2 ? rows : null;
      });
      expect(dead).toEqual([
        { receiver: 'failing', attempts: 3, last_status: 503, last_error: 'HTTP 503' },
        { receiver: 'redirecting', attempts: 1, last_status: 307, last_error: `redirect to ${target.url}/elsewhere not followed` },
      ]);
      expect(failing.received).toHaveLength(3);
      expect(target.received).toHaveLength(0);
      const metrics = await (await t.app.request('/metrics')).text();
      expect(metrics).toContain('toolgate_notify_deliveries{receiver="failing",status="dead"} 1');
      expect(metrics).toContain('toolgate_notify_attempts_total{receiver="failing",outcome="retry"} 2');
    } finally {
      await t.close();
      await Promise.all([target.close(), redirecting.close(), failing.close()]);
    }
  });
});
