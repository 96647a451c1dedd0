import { describe, expect, it } from 'vitest';
import type { ReceiverConfig } from '../../src/notify/notify.schemas.js';
import { api, eventually, fixtureToolgateFile, startTestGateway, type TestGateway } from '../helpers.js';
import { TestReceiver } from '../kit/receiver.js';

const AFTER_SECONDS = 0.4;

function receiver(name: string, url: string, events: ReceiverConfig['events']): ReceiverConfig {
  return { name, url, format: 'json', secret: 'a-receiver-secret-of-some-length', events, sensitivity: ['HIGH', 'CRITICAL'], timeoutSeconds: 2, concurrency: 4, retry: { maxAttempts: 5, minSeconds: 0.02, maxSeconds: 0.1 } };
}

async function escalationGateway(team: TestReceiver, oncall: TestReceiver): Promise<TestGateway> {
  return startTestGateway({
    env: { APPROVAL_POLLING_INTERVAL: '0.05' },
    file: fixtureToolgateFile({}, {
      notify: [receiver('team', team.url, ['approval.requested']), receiver('oncall', oncall.url, ['approval.resolved'])],
      escalation: { HIGH: { afterSeconds: AFTER_SECONDS, notify: ['oncall'], mention: ['here'] } },
    }),
  });
}

async function ask(t: TestGateway): Promise<{ id: string; requestedAt: number }> {
  const made = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: { path: 'x', content: 'abc' } } });
  expect(made.status).toBe(202);
  return { id: made.body.approval.id, requestedAt: Date.parse(made.body.approval.requestedAt) };
}

const escalationsOf = (t: TestGateway, id: string) => t.query<{ at: number; actor: string; details: string }>(`select at, actor, details from audit_events where action = 'approval.escalated' and request_id = ?`, id);

describe('escalation', () => {
  it('escalates an unanswered request once, at its time, to the receivers its rule names, and records it in the audit log', async () => {
    const [team, oncall] = await Promise.all([TestReceiver.start(), TestReceiver.start()]);
    const t = await escalationGateway(team, oncall);
    try {
      const { id, requestedAt } = await ask(t);
      const got = await eventually(() => oncall.received.find((r) => r.json?.type === 'approval.escalated'), 10_000);
      expect(got.json).toMatchObject({ type: 'approval.escalated', approval: { id, status: 'pending' }, escalation: { afterSeconds: AFTER_SECONDS, mention: ['here'] } });
      const [event, ...more] = await escalationsOf(t, id);
      expect(more).toHaveLength(0);
      expect(event!.actor).toBe('system');
      expect(Number(event!.at) - requestedAt).toBeGreaterThanOrEqual(AFTER_SECONDS * 1000);
      expect(JSON.parse(event!.details)).toMatchObject({ sensitivity: 'HIGH', afterSeconds: AFTER_SECONDS, notify: ['oncall'] });
      // More runs of the job escalate nothing more.
      for (let i = 0; i < 3; i++) await t.gateway.jobs.tick();
      expect(await escalationsOf(t, id)).toHaveLength(1);
      await eventually(async () => Number((await t.query(`select count(*) as n from notify_deliveries where status = 'pending'`))[0]!.n) === 0);
      expect(oncall.received.filter((r) => r.json?.type === 'approval.escalated')).toHaveLength(1);
      // The team was told of the request, and not of the escalation: it is not subscribed to it and not named by the rule.
      expect(team.received.map((r) => r.json.type)).toEqual(['approval.requested']);
    } finally {
      await t.close();
      await Promise.all([team.close(), oncall.close()]);
    }
  });

  it('never escalates a request settled before its time', async () => {
    const [team, oncall] = await Promise.all([TestReceiver.start(), TestReceiver.start()]);
    const t = await escalationGateway(team, oncall);
    try {
      const { id, requestedAt } = await ask(t);
      const decided = await api(t.app, 'POST', `/api/approvals/${id}/reject`, { token: t.tokens.admin, body: { reason: 'no' } });
      expect(decided.status).toBe(200);
      // Past its escalation time, and the job has run since.
      await eventually(() => Date.now() > requestedAt + AFTER_SECONDS * 1000 + 50, 5000);
      for (let i = 0; i < 3; i++) await t.gateway.jobs.tick();
      expect(await escalationsOf(t, id)).toHaveLength(0);
      await eventually(() => oncall.received.some((r) => r.json?.type === 'approval.resolved'));
      expect(oncall.received.map((r) => r.json.type)).toEqual(['approval.resolved']);
    } finally {
      await t.close();
      await Promise.all([team.close(), oncall.close()]);
    }
  });
});
