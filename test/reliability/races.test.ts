import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithToken } from '../../src/db/seed.js';
import { api, ON_POSTGRES, startTestGateway, type TestGateway } from '../helpers.js';
import { connectApprover, type Approver } from '../ws-client.js';

const auditOf = async (t: TestGateway, requestId: string) =>
  (await t.gateway.store.audit.auditPage({ limit: 10_000 })).filter((e) => e.requestId === requestId).map((e) => e.action);

async function asyncRequest(t: TestGateway, tool = 'write_file') {
  const res = await api(t.url, 'POST', `/tools/${tool}/call`, {
    token: t.tokens.dev,
    body: { arguments: { path: 'race', content: 'x' } },
    headers: { prefer: 'respond-async' },
  });
  expect(res.status).toBe(202);
  return res.body.approval as { id: string; shortId: string };
}

interface Outcome {
  ok: boolean;
  /** What came back, as it came: `HTTP 409` from the API, `error frame` from the socket. */
  answer: string;
  code: string | undefined;
  status: string | undefined;
}

/** One decision, over HTTP or over an approver's socket. */
async function decide(t: TestGateway, via: { token: string } | { socket: Approver }, id: string, verdict: 'approve' | 'reject', ref: string): Promise<Outcome> {
  if ('token' in via) {
    const res = await api(t.url, 'POST', `/api/approvals/${id}/${verdict}`, { token: via.token, body: { reason: `race ${ref}` } });
    return { ok: res.status === 200, answer: `HTTP ${res.status}`, code: res.body?.error?.code, status: res.body?.approval?.status };
  }
  via.socket.ws.send(JSON.stringify({ type: 'decide', ref, id, decision: verdict, reason: `race ${ref}` }));
  const frame = await via.socket.next((f) => f.ref === ref && (f.type === 'decide.ok' || f.type === 'error'));
  return { ok: frame.type === 'decide.ok', answer: `${frame.type} frame`, code: frame.code, status: frame.approval?.status };
}

/** A decision that lost the race: 409 not_pending over HTTP, an error frame not_pending over the socket. */
function expectNotPending(outcome: Outcome) {
  expect(outcome.ok).toBe(false);
  expect(outcome.answer).toMatch(/^(HTTP 409|error frame)$/);
  expect(outcome.code).toBe('not_pending');
}

describe('races: many approvers, one request', () => {
  let t: TestGateway;
  const tokens: string[] = [];
  const sockets: Approver[] = [];
  beforeAll(async () => {
    t = await startTestGateway();
    for (let i = 0; i < 20; i++) tokens.push(await createUserWithToken(t.gateway.store, `approver_${i}`, 'admin', Date.now()));
    for (let i = 10; i < 20; i++) sockets.push(await connectApprover(t.wsUrl, tokens[i]));
    await Promise.all(sockets.map((s) => s.next((f) => f.type === 'hello')));
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await t?.close();
  });

  it('lets exactly one of 20 approvers (10 over HTTP, 10 over WebSocket) win, 5 rounds: the rest get 409, one decision row, one audit event', async () => {
    for (let round = 0; round < 5; round++) {
      const request = await asyncRequest(t);
      const outcomes = await Promise.all(
        tokens.map((token, i) =>
          decide(t, i < 10 ? { token } : { socket: sockets[i - 10]! }, round % 2 ? request.shortId : request.id, i % 2 ? 'reject' : 'approve', `r${round}-${i}`),
        ),
      );
      const winners = outcomes.filter((o) => o.ok);
      expect(winners).toHaveLength(1);
      const losers = outcomes.filter((o) => !o.ok);
      expect(losers).toHaveLength(19);
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.ok) continue;
        expectNotPending(outcome);
        expect(outcome.answer).toBe(i < 10 ? 'HTTP 409' : 'error frame');
      }
      const decisions = (await t.gateway.store.approvals.decisions(request.id));
      expect(decisions).toHaveLength(1);
      const stored = (await t.gateway.store.approvals.request(request.id))!;
      expect(stored.status).toBe(winners[0]!.status);
      expect(stored.status).toBe(decisions[0]!.verdict === 'approve' ? 'approved' : 'rejected');
      const decisionEvents = (await auditOf(t, request.id)).filter((a) => a.startsWith('approval.') && a !== 'approval.requested');
      expect(decisionEvents).toEqual([`approval.${stored.status}`]);
    }
  });
});

describe('races: quorum of 2', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ env: { APPROVAL_QUORUM_HIGH: '2' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('counts exactly 2 of 3 concurrent approvals (HTTP and WebSocket) and answers the third 409, 5 rounds', async () => {
    const tokens = await Promise.all(['a', 'b', 'c'].map((n) => createUserWithToken(t.gateway.store, `quorum_${n}`, 'admin', Date.now())));
    const socket = await connectApprover(t.wsUrl, tokens[2]);
    await socket.next((f) => f.type === 'hello');
    try {
      for (let round = 0; round < 5; round++) {
        const request = await asyncRequest(t);
        const outcomes = await Promise.all([
          decide(t, { token: tokens[0]! }, request.id, 'approve', `q${round}-0`),
          decide(t, { token: tokens[1]! }, request.id, 'approve', `q${round}-1`),
          decide(t, { socket }, request.id, 'approve', `q${round}-2`),
        ]);
        expect(outcomes.filter((o) => o.ok)).toHaveLength(2);
        const loser = outcomes.findIndex((o) => !o.ok);
        expectNotPending(outcomes[loser]!);
        expect(outcomes[loser]!.answer).toBe(loser < 2 ? 'HTTP 409' : 'error frame');
        expect((await t.gateway.store.approvals.decisions(request.id))).toHaveLength(2);
        expect((await t.gateway.store.approvals.request(request.id))!.status).toBe('approved');
        expect((await auditOf(t, request.id)).filter((a) => a === 'approval.approved' || a === 'approval.decision').sort()).toEqual(['approval.approved', 'approval.decision']);
      }
    } finally {
      socket.close();
    }
  });
});

describe('races: a decision racing the expiry', () => {
  // A request's way to an approver and back takes several database round trips, each a few times
  // slower on PostgreSQL (another process) than on SQLite (in process): the timeout and the
  // decisions' delays stretch alike, so both sides of the race are still exercised.
  const stretch = ON_POSTGRES ? 5 : 1;
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ env: { APPROVAL_TIMEOUT: String(0.05 * stretch), APPROVAL_POLLING_INTERVAL: String(0.02 * stretch) } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the caller, the decider and the stored state agree in 120 races of a 50 ms timeout (250 ms on PostgreSQL)', async () => {
    const approver = await connectApprover(t.wsUrl, t.tokens.admin);
    await approver.next((f) => f.type === 'hello');
    const tally: Record<string, number> = {};
    try {
      for (let batch = 0; batch < 12; batch++) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const tag = `e${batch}-${i}`;
            const call = api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: tag, content: 'x' } } });
            const pushed = await approver.next((f) => f.type === 'approval.requested' && f.approval.arguments.path === tag);
            await new Promise((r) => setTimeout(r, (((batch * 10 + i) * 7) % 70) * stretch));
            const verdict = i % 3 === 0 ? 'reject' : 'approve';
            const decided = await decide(t, { token: t.tokens.admin }, pushed.approval.id, verdict, tag);
            const answer = await call;
            const stored = (await t.gateway.store.approvals.request(pushed.approval.id))!;
            const expected = { 200: 'approved', 403: 'rejected', 408: 'expired' }[answer.status as 200 | 403 | 408];
            expect(expected, `caller got ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`).toBeDefined();
            expect(stored.status).toBe(expected);
            expect(answer.body.approval.status).toBe(stored.status);
            if (decided.ok) {
              expect(decided.status).toBe(verdict === 'approve' ? 'approved' : 'rejected');
              expect(stored.status).toBe(decided.status);
            } else {
              expectNotPending(decided);
              expect(decided.answer).toBe('HTTP 409');
              expect(stored.status).toBe('expired');
            }
            if (stored.status === 'approved') expect(stored.executionStatus).toBe('succeeded');
            tally[stored.status] = (tally[stored.status] ?? 0) + 1;
          }),
        );
      }
    } finally {
      approver.close();
    }
    // Both sides of the race were exercised.
    expect(tally.expired ?? 0).toBeGreaterThan(0);
    expect((tally.approved ?? 0) + (tally.rejected ?? 0)).toBeGreaterThan(0);
    console.info('expiry race outcomes', tally);
  }, 60_000);
});
