import { describe, expect, it } from 'vitest';
import { notifySettings } from '../../src/notify/receivers.js';
import { toolgateFileSchema } from '../../src/tools/gateway-file.js';

const problems = (file: unknown) => {
  const parsed = toolgateFileSchema.safeParse(file);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('toolgate.json notify, slack and escalation', () => {
  it('fills in the defaults of a receiver', () => {
    const parsed = toolgateFileSchema.parse({ notify: [{ name: 'hooks', url: 'https://hooks.example.com/x', secret: 'sixteen-chars-or-more' }] });
    expect(parsed.notify).toEqual([
      {
        name: 'hooks',
        url: 'https://hooks.example.com/x',
        secret: 'sixteen-chars-or-more',
        format: 'json',
        events: ['approval.requested', 'approval.resolved', 'approval.escalated'],
        sensitivity: ['HIGH', 'CRITICAL'],
        timeoutSeconds: 10,
        concurrency: 8,
        retry: { maxAttempts: 12, minSeconds: 5, maxSeconds: 3600 },
      },
    ]);
  });

  it('names each mistake by its place in the file', () => {
    expect(problems({ notify: [{ name: 'hooks', url: 'https://hooks.example.com/x' }] })).toEqual(['notify.0.secret: a json receiver needs "secret" (or "secretEnv") to sign its deliveries']);
    expect(problems({ notify: [{ name: 'hooks', url: 'ftp://hooks.example.com/x', secret: 'sixteen-chars-or-more' }] })).toEqual(['notify.0.url: must be an http(s) URL']);
    expect(problems({ notify: [{ name: 'hooks', url: 'https://a.example.com', secret: 'short' }] })).toEqual(['notify.0.secret: must be at least 16 characters']);
    expect(problems({ notify: [{ name: 'a', url: 'https://a.example.com', secret: 'sixteen-chars-or-more' }, { name: 'a', url: 'https://b.example.com', secret: 'sixteen-chars-or-more' }] })).toEqual([
      'notify.1.name: "a" is used by another receiver',
    ]);
    expect(problems({ notify: [{ name: 's', format: 'slack', channel: 'C0123ABCD' }] })).toEqual(['notify.0.channel: posting to a channel needs slack.botToken (or slack.botTokenEnv)']);
    expect(problems({ notify: [{ name: 's', format: 'slack' }] })).toEqual(['notify.0.url: a slack receiver needs either "url" (an incoming webhook) or "channel" (with slack.botToken), not both']);
    expect(problems({ notify: [{ name: 'a', url: 'https://a.example.com', secret: 'sixteen-chars-or-more', events: ['approval.approved'] }] })[0]).toMatch(/^notify\.0\.events\.0: /);
    expect(problems({ notify: [], escalation: { HIGH: { afterSeconds: 60, notify: ['nobody'] } } })).toEqual(['escalation.HIGH.notify.0: no receiver named "nobody" in "notify"']);
    expect(problems({ escalation: { HIGH: { afterSeconds: 0, notify: [] } } })).toEqual(['escalation.HIGH.afterSeconds: must be greater than 0', 'escalation.HIGH.notify: name at least one receiver']);
    expect(problems({ escalation: { URGENT: { afterSeconds: 1, notify: ['a'] } } }).length).toBeGreaterThan(0);
    expect(problems({ notify: [{ name: 'a', url: 'https://a.example.com', secret: 'sixteen-chars-or-more' }], escalation: { HIGH: { afterSeconds: 1, notify: ['a'], mention: ['@channel'] } } })[0]).toMatch(/^escalation\.HIGH\.mention\.0: here, channel/);
  });

  it('reads secrets named by *Env from the environment, and says which variable is missing', () => {
    const file = toolgateFileSchema.parse({
      notify: [{ name: 'hooks', url: 'https://hooks.example.com/x', secretEnv: 'HOOKS_SECRET' }],
      slack: { signingSecretEnv: 'SLACK_SIGNING', botTokenEnv: 'SLACK_BOT' },
    });
    const settings = notifySettings(file, { HOOKS_SECRET: 'from-the-environment', SLACK_SIGNING: 'signing-secret', SLACK_BOT: 'xoxb-1' });
    expect(settings.receivers.get('hooks')?.secret).toBe('from-the-environment');
    expect(settings.slack).toMatchObject({ signingSecret: 'signing-secret', botToken: 'xoxb-1', interactive: true, apiUrl: 'https://slack.com/api' });
    expect(() => notifySettings(file, { SLACK_SIGNING: 'x', SLACK_BOT: 'y' })).toThrow('notify.0.secretEnv: the environment variable HOOKS_SECRET is not set');
    expect(() => notifySettings(file, { HOOKS_SECRET: 'x', SLACK_BOT: 'y' })).toThrow('slack.signingSecretEnv: the environment variable SLACK_SIGNING is not set');
  });
});
