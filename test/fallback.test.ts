// @module-tag process
import { afterEach, describe, expect, it } from 'vitest';
import { api, startTestGateway, type TestGateway } from './helpers.js';
import { decideInAnotherProcess } from './other-process.js';
import { connectApprover, type TestApprover } from './ws-client.js';

const POLLING_INTERVAL_S = 0.2;
/**
 * The quality bar is interval + 100 ms (300 ms here); `npm run bench` measures it (section 4).
 * A test on a loaded machine may not hold a timing bar: this bound only proves that the change
 * feed, run every interval, woke the caller, not its expiry (APPROVAL_TIMEOUT, 300 s) nor a
 * slower pace, and holds at several times slower than a quiet machine.
 */
const BOUND_MS = POLLING_INTERVAL_S * 1000 * 10;

describe('the polling fallback', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const gatewayOn = async (options: Parameters<typeof startTestGateway>[0] = {}) => {
    const t = await startTestGateway({ ...options, env: { APPROVAL_POLLING_INTERVAL: String(POLLING_INTERVAL_S), ...options.env } });
    cleanups.push(() => t.close());
    return t;
  };
  const approverOn = async (t: TestGateway, token: string) => {
    const a = await connectApprover(t.wsUrl, token);
    cleanups.push(() => a.close());
    await a.seen((f) => f.type === 'hello');
    return a;
  };
  /** Starts a held call; resolves once the approver was pushed the request. */
  const holdCall = async (t: TestGateway, approver: TestApprover, content: string) => {
    let answeredAt = 0;
    const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'f', content } } }).then((res) => {
      answeredAt = Date.now();
      return res;
    });
    const { approval } = await approver.seen((f) => f.type === 'approval.requested' && f.approval.arguments.content === content);
    return { approval, call, answeredAt: () => answeredAt };
  };

  it('brings a decision written by another process to the waiting caller within a few polling intervals, and pushes it to approvers', async () => {
    const t = await gatewayOn();
    const watcher = await approverOn(t, t.tokens.admin);
    const delays: number[] = [];
    for (const [i, verdict] of (['approve', 'reject', 'approve'] as const).entries()) {
      const held = await holdCall(t, watcher, `round ${i}`);
      const decided = await decideInAnotherProcess(t.dbPath, verdict, held.approval.shortId, `decided elsewhere ${i}`);
      expect(decided.approval.status).toBe(verdict === 'approve' ? 'approved' : 'rejected');
      const res = await held.call;
      delays.push(held.answeredAt() - decided.committedAt);
      if (verdict === 'approve') {
        expect(res.status).toBe(200);
        expect(res.body.result.content[0].text).toBe(`wrote ${`round ${i}`.length} bytes to f`);
        expect(res.body.approval.decisions).toEqual([expect.objectContaining({ approver: 'admin_user', reason: `decided elsewhere ${i}` })]);
      } else {
        expect(res.status).toBe(403);
        expect(res.body.error.code).toBe('approval_rejected');
      }
      const pushed = await watcher.seen((f) => f.type === 'approval.resolved' && f.approval.id === held.approval.id);
      expect(pushed.approval.status).toBe(decided.approval.status);
    }
    console.info(`fallback delay, decision committed in another process → caller answered: ${delays.join(' ms, ')} ms (bound ${BOUND_MS} ms)`);
    for (const d of delays) expect(d).toBeLessThan(BOUND_MS);
    // Decided elsewhere, yet this process holds no expiry timer for them any more.
    expect(t.gateway.approvals.counts().expiryTimers).toBe(0);
  });

  it('lets a second gateway on the same file decide over its socket a request whose caller the first gateway holds', async () => {
    const first = await gatewayOn();
    const second = await gatewayOn({ dbPath: first.dbPath });
    const onFirst = await approverOn(first, first.tokens.admin);
    const onSecond = await approverOn(second, first.tokens.admin);

    const held = await holdCall(first, onFirst, 'two gateways');
    // The second gateway learns of the request only through the fallback, then pushes it.
    const remote = await onSecond.seen((f) => f.type === 'approval.requested' && f.approval.id === held.approval.id);
    expect(remote.approval).toMatchObject({ status: 'pending', requester: { id: 'dev_user' } });

    onSecond.send({ type: 'decide', ref: 'x', id: held.approval.shortId, decision: 'approve', reason: 'from the other gateway' });
    expect(await onSecond.seen((f) => f.ref === 'x')).toMatchObject({ type: 'decide.ok', approval: { status: 'approved' } });
    const decidedAt = Date.now();
    const res = await held.call;
    expect(res.status).toBe(200);
    expect(held.answeredAt() - decidedAt).toBeLessThan(BOUND_MS);
    expect((await onFirst.seen((f) => f.type === 'approval.resolved' && f.approval.id === held.approval.id)).approval.status).toBe('approved');
    // The tool ran once, on the gateway that held the caller.
    const row = (await first.gateway.store.approvals.request(held.approval.id))!;
    expect(row.executionInstanceId).toBe(first.gateway.instanceId);
  });
});
