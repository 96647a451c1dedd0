import { describe, expect, it } from 'vitest';
import type { ReceiverConfig } from '../../src/notify/notify.schemas.js';
import { slackSignature } from '../../src/notify/signature.js';
import { api, eventually, fixtureToolgateFile, startTestGateway, type TestGateway } from '../helpers.js';
import { TestReceiver, type Received } from '../kit/receiver.js';

const SIGNING_SECRET = 'slack-signing-secret-for-tests';
const BOT_TOKEN = 'xoxb-test-bot-token';
const MESSAGE_TS = '1700000000.000100';
const ADMIN_SLACK = 'UADMIN0';

/** A local stand-in for Slack's Web API (…/api/<method>) and its response_urls (…/respond/…). */
async function slackStandIn(): Promise<TestReceiver> {
  const slack = await TestReceiver.start();
  slack.answer = (r) => {
    if (r.path.startsWith('/respond/')) return { status: 200, body: 'ok' };
    if (r.path === '/api/chat.postMessage' || r.path === '/api/chat.update') return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ok: true, channel: 'C0123ABCD', ts: MESSAGE_TS }) };
    if (r.path === '/api/views.open') return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ok: true }) };
    return { status: 404, body: JSON.stringify({ ok: false, error: 'unknown_method' }) };
  };
  return slack;
}

async function slackGateway(slack: TestReceiver, env: Record<string, string> = {}): Promise<TestGateway> {
  const approvers: ReceiverConfig = {
    name: 'approvers',
    format: 'slack',
    channel: 'C0123ABCD',
    events: ['approval.requested', 'approval.updated', 'approval.resolved'],
    sensitivity: ['HIGH', 'CRITICAL'],
    timeoutSeconds: 2,
    concurrency: 4,
    retry: { maxAttempts: 20, minSeconds: 0.02, maxSeconds: 0.1 },
  };
  const t = await startTestGateway({
    env: { APPROVAL_POLLING_INTERVAL: '0.05', PUBLIC_URL: 'https://toolgate.example.com', ...env },
    file: fixtureToolgateFile({}, {
      notify: [approvers],
      slack: { signingSecret: SIGNING_SECRET, botToken: BOT_TOKEN, apiUrl: `${slack.url}/api`, responseUrlBase: `${slack.url}/respond/` },
    }),
  });
  await t.gateway.store.withTransaction((tx) => tx.notify.linkSlack({ slackUserId: ADMIN_SLACK, userId: 'admin_user', createdAt: Date.now() }));
  return t;
}

/** A request to the interactions endpoint, form-encoded and signed the way Slack signs it. */
function fromSlack(t: TestGateway, payload: unknown, options: { secret?: string; timestamp?: number; tamper?: (body: string) => string; raw?: string } = {}) {
  const body = options.raw ?? `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const signature = slackSignature(options.secret ?? SIGNING_SECRET, timestamp, body);
  return t.app.request('/integrations/slack/interactions', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': timestamp, 'x-slack-signature': signature },
    body: options.tamper ? options.tamper(body) : body,
  });
}

const press = (slackUser: string, requestId: string, verdict: 'approve' | 'reject' = 'approve', n = 1) => ({
  type: 'block_actions',
  user: { id: slackUser },
  team: { id: 'T0TEAM' },
  trigger_id: `trigger-${n}`,
  response_url: `/respond/${n}`,
  actions: [{ action_id: `toolgate.${verdict}`, block_id: 'decision', type: 'button', value: requestId }],
});

const submit = (slackUser: string, requestId: string, reason: string, verdict: 'approve' | 'reject' = 'approve') => ({
  type: 'view_submission',
  user: { id: slackUser },
  team: { id: 'T0TEAM' },
  view: { callback_id: 'toolgate.reason', private_metadata: JSON.stringify({ id: requestId, verdict }), state: { values: { reason: { reason_input: { type: 'plain_text_input', value: reason } } } } },
});

async function ask(t: TestGateway, token = t.tokens.dev, args: Record<string, unknown> = { path: 'x', content: 'abc' }): Promise<string> {
  const made = await api(t.app, 'POST', '/api/approvals', { token, body: { tool: 'write_file', arguments: args } });
  expect(made.status).toBe(202);
  return made.body.approval.id as string;
}

const statusOf = async (t: TestGateway, id: string) => (await api(t.app, 'GET', `/api/approvals/${id}`, { token: t.tokens.admin })).body.approval;
const calls = (slack: TestReceiver, method: string) => slack.to(`/api/${method}`);
const posted = (slack: TestReceiver, id: string) => calls(slack, 'chat.postMessage').find((r) => JSON.stringify(r.json.blocks).includes(id));
const buttonsOf = (message: Received) => (message.json.blocks as { type: string; elements?: { action_id: string; value: string }[] }[]).find((b) => b.type === 'actions')?.elements ?? [];
/** The response_url messages of press n. */
const toldPresser = (slack: TestReceiver, n: number) => slack.to(`/respond/${n}`).map((r) => r.json.text as string);

/** Press n of `slackUser` went to the response_url only, and opened no modal. */
async function refusedAtPress(t: TestGateway, slack: TestReceiver, slackUser: string, id: string, n: number) {
  const res = await fromSlack(t, { ...press(slackUser, id, 'approve', n), response_url: `${slack.url}/respond/${n}` });
  expect(res.status).toBe(200);
  await eventually(() => toldPresser(slack, n).length === 1);
  expect(calls(slack, 'views.open').filter((r) => r.json.trigger_id === `trigger-${n}`)).toHaveLength(0);
  return toldPresser(slack, n)[0]!;
}

describe('Slack', () => {
  it('posts a Block Kit message with Approve and Reject to the channel, in which nothing the requester wrote is a mention, a link or formatting', async () => {
    const slack = await slackStandIn();
    const t = await slackGateway(slack);
    try {
      const hostile = { path: 'x', content: '<!channel> <@U0BOSS> <https://evil.example|Approved by security> *APPROVED* ```done``` \u202egnp.exe' };
      const id = await ask(t, t.tokens.dev, hostile);
      const message = await eventually(() => posted(slack, id));
      expect(message.headers.authorization).toBe(`Bearer ${BOT_TOKEN}`);
      expect(message.json).toMatchObject({ channel: 'C0123ABCD', unfurl_links: false, unfurl_media: false, link_names: false });
      const blocks = JSON.stringify(message.json.blocks);
      for (const raw of ['<!channel>', '<@U0BOSS>', '<https://evil.example', '```done```', '\u202e']) expect(blocks).not.toContain(raw);
      expect(blocks).toContain('&lt;!channel&gt; &lt;@U0BOSS&gt; &lt;https://evil.example|Approved by security&gt;');
      expect(blocks).toContain('\\\\u{202e}gnp.exe');
      expect(blocks).toContain(`<https://toolgate.example.com/console#/r/${id}|Open in the console>`);
      expect(buttonsOf(message).map((b) => [b.action_id, b.value])).toEqual([
        ['toolgate.approve', id],
        ['toolgate.reject', id],
      ]);
      expect(message.json.text).not.toContain('<');
    } finally {
      await t.close();
      await slack.close();
    }
  });

  it("approves on a linked approver's press and reason, through the decision service, and updates the message in place", async () => {
    const slack = await slackStandIn();
    const t = await slackGateway(slack);
    try {
      const id = await ask(t);
      await eventually(() => posted(slack, id));
      const pressed = await fromSlack(t, press(ADMIN_SLACK, id));
      expect(pressed.status).toBe(200);
      const modal = await eventually(() => calls(slack, 'views.open')[0]);
      expect(modal.headers.authorization).toBe(`Bearer ${BOT_TOKEN}`);
      expect(modal.json).toMatchObject({ trigger_id: 'trigger-1', view: { type: 'modal', callback_id: 'toolgate.reason' } });
      expect(JSON.parse(modal.json.view.private_metadata)).toEqual({ id, verdict: 'approve' });
      // The press alone decides nothing: the reason comes first.
      expect((await statusOf(t, id)).status).toBe('pending');

      const submitted = await fromSlack(t, submit(ADMIN_SLACK, id, 'checked the path'));
      expect(submitted.status).toBe(200);
      expect(await submitted.text()).toBe('');
      expect(await statusOf(t, id)).toMatchObject({ status: 'approved', decisions: [{ approver: 'admin_user', verdict: 'approve', reason: 'checked the path' }] });
      const updated = await eventually(() => calls(slack, 'chat.update').find((r) => JSON.stringify(r.json.blocks).includes('Approved')));
      expect(updated.json).toMatchObject({ channel: 'C0123ABCD', ts: MESSAGE_TS });
      expect(buttonsOf(updated)).toEqual([]);
      expect(JSON.stringify(updated.json.blocks)).toContain('`checked the path`');
      // The decision is in the audit log as any other, by the linked user.
      const audit = await api(t.app, 'GET', `/security/logs/audit?request=${id}&action=approval.approved`, { token: t.tokens.admin });
      expect(audit.body.events).toEqual([expect.objectContaining({ actor: 'admin_user', action: 'approval.approved' })]);
    } finally {
      await t.close();
      await slack.close();
    }
  });

  it('decides nothing for a Slack user who is not linked, or whose toolgate user is disabled', async () => {
    const slack = await slackStandIn();
    const t = await slackGateway(slack);
    try {
      await t.gateway.users.add('test', 'second_admin', 'admin');
      await t.gateway.store.withTransaction((tx) => tx.notify.linkSlack({ slackUserId: 'USECOND0', userId: 'second_admin', createdAt: Date.now() }));
      const id = await ask(t);
      expect(await refusedAtPress(t, slack, 'UNOBODY0', id, 1)).toContain('not linked to a toolgate approver');
      // A response_url anywhere but Slack's (here, the stand-in's /respond/) is never called.
      const elsewhere = await TestReceiver.start();
      try {
        expect((await fromSlack(t, { ...press('UNOBODY0', id, 'approve', 9), response_url: `${elsewhere.url}/respond/9` })).status).toBe(200);
        await eventually(async () => (await fromSlack(t, { ...press('UNOBODY0', id, 'approve', 10), response_url: `${slack.url}/respond/10` })).status === 200 && toldPresser(slack, 10).length === 1);
        expect(elsewhere.received).toHaveLength(0);
      } finally {
        await elsewhere.close();
      }
      const unlinked = await fromSlack(t, submit('UNOBODY0', id, 'let me'));
      expect(await unlinked.json()).toEqual({ response_action: 'errors', errors: { reason: expect.stringContaining('not linked') } });

      // Linked, pressed while active (the modal opens), disabled before submitting: refused at the submission.
      expect((await fromSlack(t, press('USECOND0', id, 'approve', 2))).status).toBe(200);
      await eventually(() => calls(slack, 'views.open').some((r) => r.json.trigger_id === 'trigger-2'));
      await t.gateway.users.disable('test', 'second_admin');
      const late = await fromSlack(t, submit('USECOND0', id, 'approving anyway'));
      expect(await late.json()).toEqual({ response_action: 'errors', errors: { reason: 'The toolgate user second_admin is disabled.' } });
      expect(await refusedAtPress(t, slack, 'USECOND0', id, 3)).toBe('The toolgate user second_admin is disabled.');
      expect(await statusOf(t, id)).toMatchObject({ status: 'pending', decisions: [] });
    } finally {
      await t.close();
      await slack.close();
    }
  });

  it('refuses a request with a bad, missing or stale Slack signature, and it decides nothing', async () => {
    const slack = await slackStandIn();
    const t = await slackGateway(slack);
    try {
      const id = await ask(t);
      const good = submit(ADMIN_SLACK, id, 'fine');
      const refused = [
        await fromSlack(t, good, { secret: 'not-the-signing-secret' }),
        await fromSlack(t, good, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 }),
        await fromSlack(t, good, { tamper: (body) => body.replace('fine', 'FINE') }),
        await t.app.request('/integrations/slack/interactions', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `payload=${encodeURIComponent(JSON.stringify(good))}` }),
      ];
      for (const res of refused) {
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ error: { code: 'unauthorized', message: 'bad or stale Slack request signature' } });
      }
      expect((await fromSlack(t, press(ADMIN_SLACK, id), { secret: 'not-the-signing-secret' })).status).toBe(401);
      expect(calls(slack, 'views.open')).toHaveLength(0);
      expect(await statusOf(t, id)).toMatchObject({ status: 'pending', decisions: [] });
      // Signed, but not a payload at all.
      const garbage = await fromSlack(t, null, { raw: 'payload=%7Bnot-json' });
      expect(garbage.status).toBe(400);
      expect(await garbage.json()).toMatchObject({ error: { code: 'validation_failed' } });
    } finally {
      await t.close();
      await slack.close();
    }
  });

  it("refuses the requester's own press (four-eyes), and a decision on a request already decided", async () => {
    const slack = await slackStandIn();
    const t = await slackGateway(slack);
    try {
      const own = await ask(t, t.tokens.admin);
      const selfish = await fromSlack(t, submit(ADMIN_SLACK, own, 'mine, so fine'));
      expect(await selfish.json()).toEqual({ response_action: 'errors', errors: { reason: 'you may not decide your own request' } });
      expect(await statusOf(t, own)).toMatchObject({ status: 'pending', decisions: [] });

      const other = await ask(t);
      await t.gateway.users.add('test', 'second_admin', 'admin');
      const second = (await api(t.app, 'POST', `/api/approvals/${other}/reject`, { token: t.tokens.admin, body: { reason: 'no' } })).status;
      expect(second).toBe(200);
      const late = await fromSlack(t, submit(ADMIN_SLACK, other, 'yes', 'approve'));
      expect(await late.json()).toEqual({ response_action: 'errors', errors: { reason: expect.stringContaining('already rejected') } });
      expect(await statusOf(t, other)).toMatchObject({ status: 'rejected', decisions: [{ verdict: 'reject' }] });
    } finally {
      await t.close();
      await slack.close();
    }
  });

  it('counts a Slack approval toward the quorum like any other, and shows the count in the message', async () => {
    const slack = await slackStandIn();
    const t = await slackGateway(slack, { APPROVAL_QUORUM_HIGH: '2' });
    try {
      await t.gateway.users.add('test', 'second_admin', 'admin');
      await t.gateway.store.withTransaction((tx) => tx.notify.linkSlack({ slackUserId: 'USECOND0', userId: 'second_admin', createdAt: Date.now() }));
      const id = await ask(t);
      await eventually(() => posted(slack, id));
      expect((await fromSlack(t, submit(ADMIN_SLACK, id, 'one'))).status).toBe(200);
      expect(await statusOf(t, id)).toMatchObject({ status: 'pending', decisions: [{ approver: 'admin_user' }] });
      const counted = await eventually(() => calls(slack, 'chat.update').find((r) => JSON.stringify(r.json.blocks).includes('1 of 2')));
      expect(buttonsOf(counted)).toHaveLength(2);
      // The same approver again: already decided.
      expect(await (await fromSlack(t, submit(ADMIN_SLACK, id, 'again'))).json()).toEqual({ response_action: 'errors', errors: { reason: expect.stringContaining('already decided') } });
      expect((await fromSlack(t, submit('USECOND0', id, 'two'))).status).toBe(200);
      expect(await statusOf(t, id)).toMatchObject({ status: 'approved' });
    } finally {
      await t.close();
      await slack.close();
    }
  });
});
