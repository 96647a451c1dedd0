import { z } from 'zod';

/** The events a receiver may subscribe to (toolgate.json `notify[].events`). */
export const NOTIFY_EVENTS = ['approval.requested', 'approval.updated', 'approval.resolved', 'approval.escalated', 'approval.executed'] as const;
export type NotifyEventType = (typeof NOTIFY_EVENTS)[number];

const SENSITIVITY = z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);
const NAME = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only (at most 64)');
const ENV_NAME = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
/** Seconds, fractions allowed (tests use short ones). */
const seconds = (max: number) => z.number().positive('must be greater than 0').max(max, `must be at most ${max}`);

const webUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/**
 * How often and how long a receiver's deliveries are tried: attempt n waits
 * min(maxSeconds, minSeconds · 2^(n-1)) times a random factor between 1 and 2 after attempt n failed.
 */
const retrySchema = z
  .object({
    maxAttempts: z.number().int().min(1).max(100).default(12),
    minSeconds: seconds(3600).default(5),
    maxSeconds: seconds(86_400).default(3600),
  })
  .strict();

/**
 * One receiver: a URL the operator configured (never one from a request). `json`: the event as
 * JSON, signed with `secret`. `slack`: a Block Kit message, posted to a Slack incoming webhook
 * (`url`) or, with the `slack.botToken`, to a `channel` with chat.postMessage, where it is
 * updated with the outcome and carries Approve/Reject buttons when interactivity is configured.
 */
export const receiverSchema = z
  .object({
    name: NAME,
    format: z.enum(['json', 'slack']).default('json'),
    url: webUrl.optional(),
    /** Slack channel id (C…, G…) for chat.postMessage with the bot token. */
    channel: z.string().regex(/^[CGD][A-Z0-9]{2,30}$/, 'a Slack channel id such as C0123ABCD').optional(),
    secret: z.string().min(16, 'must be at least 16 characters').optional(),
    /** The secret's environment variable, instead of the secret itself in the file. */
    secretEnv: ENV_NAME.optional(),
    events: z.array(z.enum(NOTIFY_EVENTS)).min(1).default(['approval.requested', 'approval.resolved', 'approval.escalated']),
    /** Only requests of these sensitivities (absent: HIGH and CRITICAL, the ones that wait for a person). */
    sensitivity: z.array(SENSITIVITY).min(1).default(['HIGH', 'CRITICAL']),
    timeoutSeconds: seconds(60).default(10),
    /** Deliveries of this receiver sent at once (different requests; one request's stay in order). */
    concurrency: z.number().int().min(1).max(64).default(8),
    retry: retrySchema.default({ maxAttempts: 12, minSeconds: 5, maxSeconds: 3600 }),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.secret !== undefined && r.secretEnv !== undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'give "secret" or "secretEnv", not both' });
    if (r.format === 'json') {
      if (r.url === undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: 'a json receiver needs "url"' });
      if (r.channel !== undefined) ctx.addIssue({ code: 'custom', path: ['channel'], message: '"channel" is for the slack format' });
      if (r.secret === undefined && r.secretEnv === undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'a json receiver needs "secret" (or "secretEnv") to sign its deliveries' });
    } else if ((r.url === undefined) === (r.channel === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'a slack receiver needs either "url" (an incoming webhook) or "channel" (with slack.botToken), not both' });
    }
    if (r.retry.minSeconds > r.retry.maxSeconds) ctx.addIssue({ code: 'custom', path: ['retry', 'minSeconds'], message: 'must not be above maxSeconds' });
  });

/** The Slack app: its signing secret (interactions), bot token (chat.postMessage, chat.update, views.open), API base. */
export const slackSchema = z
  .object({
    signingSecret: z.string().min(8).optional(),
    signingSecretEnv: ENV_NAME.optional(),
    botToken: z.string().min(8).optional(),
    botTokenEnv: ENV_NAME.optional(),
    /** Slack's Web API; tests point it at a local stand-in. */
    apiUrl: webUrl.default('https://slack.com/api'),
    /** Where Slack's `response_url`s may point; any other is never called. Tests point it at a local stand-in. */
    responseUrlBase: webUrl.default('https://hooks.slack.com/'),
    /** Only interactions from this workspace (team id, T…) are taken, when set. */
    teamId: z.string().regex(/^[TE][A-Z0-9]{2,30}$/, 'a Slack team id such as T0123ABCD').optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.signingSecret !== undefined && s.signingSecretEnv !== undefined) ctx.addIssue({ code: 'custom', path: ['signingSecret'], message: 'give "signingSecret" or "signingSecretEnv", not both' });
    if (s.botToken !== undefined && s.botTokenEnv !== undefined) ctx.addIssue({ code: 'custom', path: ['botToken'], message: 'give "botToken" or "botTokenEnv", not both' });
  });

/** `here`, `channel`, a Slack user (U…, W…) or user group (S…) id: who an escalation mentions in Slack. */
const MENTION = z.string().regex(/^(here|channel|[UWS][A-Z0-9]{2,30})$/, 'here, channel, a Slack user id (U…) or a user group id (S…)');

/** Per sensitivity: after `afterSeconds` pending with no decision, tell `notify` (receiver names), mentioning `mention` in Slack. */
export const escalationRuleSchema = z
  .object({
    afterSeconds: seconds(30 * 86_400),
    notify: z.array(NAME).min(1, 'name at least one receiver'),
    mention: z.array(MENTION).default([]),
  })
  .strict();

export const escalationSchema = z.partialRecord(SENSITIVITY, escalationRuleSchema);

export type ReceiverConfig = z.infer<typeof receiverSchema>;
export type SlackConfig = z.infer<typeof slackSchema>;
export type EscalationRule = z.infer<typeof escalationRuleSchema>;
export type EscalationConfig = z.infer<typeof escalationSchema>;

/** The notification part of toolgate.json, as it stands in the file (each part optional). */
export interface NotifySection {
  notify?: ReceiverConfig[] | undefined;
  slack?: SlackConfig | undefined;
  escalation?: EscalationConfig | undefined;
}

/** Checks the notification parts across each other: names unique, channels with a bot token, escalation targets that exist. */
export function checkNotifySection(s: NotifySection, ctx: z.RefinementCtx) {
  const names = new Set<string>();
  (s.notify ?? []).forEach((r, i) => {
    if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: ['notify', i, 'name'], message: `"${r.name}" is used by another receiver` });
    names.add(r.name);
    if (r.channel !== undefined && s.slack?.botToken === undefined && s.slack?.botTokenEnv === undefined) {
      ctx.addIssue({ code: 'custom', path: ['notify', i, 'channel'], message: 'posting to a channel needs slack.botToken (or slack.botTokenEnv)' });
    }
  });
  for (const [sensitivity, rule] of Object.entries(s.escalation ?? {})) {
    rule?.notify.forEach((name, i) => {
      if (!names.has(name)) ctx.addIssue({ code: 'custom', path: ['escalation', sensitivity, 'notify', i], message: `no receiver named "${name}" in "notify"` });
    });
  }
}

// ---- the JSON event (what a json receiver gets) -----------------------------------------------

export const notifyEventSchema = z
  .object({
    id: z.string().describe('the event id: the same for every receiver and every attempt (the idempotency key)'),
    type: z.enum(NOTIFY_EVENTS),
    createdAt: z.string().describe('ISO-8601 UTC'),
    approval: z.record(z.string(), z.unknown()).describe('the request as the API shows it, arguments redacted as in the audit log'),
    consoleUrl: z.string().nullable().describe('the request in the web console, when PUBLIC_URL is set'),
    escalation: z.object({ afterSeconds: z.number(), mention: z.array(z.string()) }).optional(),
  })
  .strict();

export type NotifyEvent = z.infer<typeof notifyEventSchema>;
