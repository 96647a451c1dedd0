// @module-tag process
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyToolgateSignature } from '../../src/notify/signature.js';
import { api, eventually, fixtureToolgateFile, runCli, startTestGateway, tempDir } from '../helpers.js';
import { TestReceiver } from '../kit/receiver.js';

const SECRET = 'a-receiver-secret-of-some-length';

describe('toolgate notify', () => {
  it('test: sends a signed sample to the receiver, prints its answer, and exits 1 when it is refused', async () => {
    const dir = tempDir('toolgate-notify-cli-');
    const ok = await TestReceiver.start();
    ok.answer = () => ({ status: 202, body: 'queued it' });
    const broken = await TestReceiver.start();
    broken.answer = () => ({ status: 500, body: 'on fire' });
    try {
      const config = join(dir.path, 'toolgate.json');
      writeFileSync(
        config,
        JSON.stringify({
          notify: [
            { name: 'ok', url: ok.url, secret: SECRET },
            { name: 'broken', url: broken.url, secretEnv: 'BROKEN_SECRET' },
          ],
        }),
      );
      const env = { TOOLGATE_CONFIG: config, DATABASE_PATH: join(dir.path, 'toolgate.db'), BROKEN_SECRET: SECRET };

      const sent = await runCli(['notify', 'test', 'ok'], env);
      expect(sent.stderr).toBe('');
      expect(sent.status).toBe(0);
      expect(sent.stdout).toContain(`POST ${ok.url} → HTTP 202`);
      expect(sent.stdout).toContain('queued it');
      expect(ok.received).toHaveLength(1);
      const [got] = ok.received;
      expect(verifyToolgateSignature(SECRET, got!.headers['x-toolgate-signature'] as string, got!.body, Date.now())).toBe(true);
      expect(got!.json).toMatchObject({ type: 'approval.requested', approval: { tool: 'write_file', status: 'pending', requester: { id: 'toolgate-notify-test' } } });

      const refused = await runCli(['notify', 'test', 'broken'], env);
      expect(refused.status).toBe(1);
      expect(refused.stdout).toContain('HTTP 500');
      expect(refused.stderr).toContain('the receiver did not take it: HTTP 500');
      expect(broken.received).toHaveLength(1);

      const unknown = await runCli(['notify', 'test', 'nobody'], env);
      expect(unknown.status).toBe(1);
      expect(unknown.stderr).toContain('no receiver named "nobody" in toolgate.json "notify" (there are: ok, broken)');

      const noSecret = await runCli(['notify', 'test', 'broken'], { ...env, BROKEN_SECRET: '' });
      expect(noSecret.status).toBe(1);
      expect(noSecret.stderr).toContain('notify.1.secretEnv: the environment variable BROKEN_SECRET is not set');
    } finally {
      await Promise.all([ok.close(), broken.close()]);
      dir.remove();
    }
  });

  it('deliveries: lists the outbox with each delivery\'s status, tries and last answer, and filters dead ones', async () => {
    const gone = await TestReceiver.start();
    gone.answer = () => ({ status: 410 });
    const fine = await TestReceiver.start();
    const t = await startTestGateway({
      env: { APPROVAL_POLLING_INTERVAL: '0.05' },
      file: fixtureToolgateFile({}, {
        notify: [
          { name: 'gone', url: gone.url, secret: SECRET, format: 'json', events: ['approval.requested'], sensitivity: ['HIGH'], timeoutSeconds: 2, concurrency: 1, retry: { maxAttempts: 3, minSeconds: 0.01, maxSeconds: 0.02 } },
          { name: 'fine', url: fine.url, secret: SECRET, format: 'json', events: ['approval.requested'], sensitivity: ['HIGH'], timeoutSeconds: 2, concurrency: 1, retry: { maxAttempts: 3, minSeconds: 0.01, maxSeconds: 0.02 } },
        ],
      }),
    });
    try {
      const made = await api(t.app, 'POST', '/api/approvals', { token: t.tokens.dev, body: { tool: 'write_file', arguments: { path: 'x', content: 'y' } } });
      const shortId = made.body.approval.shortId as string;
      await eventually(async () => Number((await t.query(`select count(*) as n from notify_deliveries where status <> 'pending'`))[0]!.n) === 2);
      const all = await runCli(['notify', 'deliveries'], { DATABASE_PATH: t.dbPath });
      expect(all.status).toBe(0);
      expect(all.stdout).toMatch(new RegExp(`gone +approval\\.requested +${shortId} dead +1  HTTP 410: HTTP 410`));
      expect(all.stdout).toMatch(new RegExp(`fine +approval\\.requested +${shortId} delivered +1  HTTP 200 at `));
      const dead = await runCli(['notify', 'deliveries', '--status', 'dead', '--json'], { DATABASE_PATH: t.dbPath });
      expect(dead.status).toBe(0);
      expect(JSON.parse(dead.stdout)).toEqual([expect.objectContaining({ receiver: 'gone', status: 'dead', attempts: 1, lastStatus: 410, requestId: made.body.approval.id })]);
      const bad = await runCli(['notify', 'deliveries', '--status', 'lost'], { DATABASE_PATH: t.dbPath });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain('--status must be one of pending, delivered, dead');
    } finally {
      await t.close();
      await Promise.all([gone.close(), fine.close()]);
    }
  });

  it('users link-slack links a Slack member to a user (audited), replaces the link, and refuses a bad id or an unknown user; unlink-slack removes it', async () => {
    const t = await startTestGateway();
    try {
      const env = { DATABASE_PATH: t.dbPath };
      const linked = await runCli(['users', 'link-slack', 'admin_user', 'U0123ADMIN'], env);
      expect(linked.stderr).toBe('');
      expect(linked.status).toBe(0);
      expect(linked.stdout).toBe('linked Slack user U0123ADMIN to admin_user\n');
      expect(await t.gateway.store.notify.slackLinkOf('U0123ADMIN')).toMatchObject({ userId: 'admin_user' });
      expect((await runCli(['users', 'link-slack', 'admin_user', 'U0456ADMIN'], env)).status).toBe(0);
      expect(await t.gateway.store.notify.slackLinkOf('U0123ADMIN')).toBeUndefined();
      expect(await t.gateway.store.notify.slackLinkOf('U0456ADMIN')).toMatchObject({ userId: 'admin_user' });

      const bad = await runCli(['users', 'link-slack', 'admin_user', '@alice'], env);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain('"@alice" is not a Slack user id');
      const nobody = await runCli(['users', 'link-slack', 'nobody', 'U0789NOBODY'], env);
      expect(nobody.status).toBe(1);
      expect(nobody.stderr).toContain('no user nobody');

      const events = await t.query<{ action: string; details: string }>(`select action, details from audit_events where action like 'user.slack_%' order by at`);
      expect(events.map((e) => [e.action, JSON.parse(e.details)])).toEqual([
        ['user.slack_linked', { user: 'admin_user', slackUser: 'U0123ADMIN' }],
        ['user.slack_linked', { user: 'admin_user', slackUser: 'U0456ADMIN' }],
      ]);
      const unlinked = await runCli(['users', 'unlink-slack', 'admin_user'], env);
      expect(unlinked.stdout).toBe('unlinked admin_user from Slack\n');
      expect(await t.gateway.store.notify.slackLinks()).toEqual([]);
      expect((await runCli(['users', 'unlink-slack', 'admin_user'], env)).stdout).toBe('admin_user had no Slack link\n');
    } finally {
      await t.close();
    }
  });
});
