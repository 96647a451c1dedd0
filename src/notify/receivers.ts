import type { Sensitivity } from '../approvals/approval.js';
import { AppError } from '../core/errors.js';
import type { EscalationConfig, EscalationRule, NotifyEventType, NotifySection, ReceiverConfig } from './notify.schemas.js';

/** A receiver ready to send to: its secret read from the file or the environment. */
export interface Receiver {
  name: string;
  format: 'json' | 'slack';
  /** The URL to POST to: the receiver's own, or for a Slack channel chat.postMessage on the Slack API. */
  url: string | undefined;
  channel: string | undefined;
  /** Signs X-Toolgate-Signature; undefined only for a Slack receiver configured without one. */
  secret: string | undefined;
  events: ReadonlySet<NotifyEventType>;
  sensitivity: ReadonlySet<Sensitivity>;
  timeoutMs: number;
  concurrency: number;
  retry: { maxAttempts: number; minMs: number; maxMs: number };
}

export interface SlackApp {
  signingSecret: string | undefined;
  botToken: string | undefined;
  apiUrl: string;
  /** The only place a `response_url` from Slack may point to. */
  responseUrlBase: string;
  teamId: string | undefined;
  /** Approve/Reject buttons: a signing secret to verify presses and a bot token to ask for the reason in a modal. */
  interactive: boolean;
}

export interface NotifySettings {
  receivers: Receivers;
  slack: SlackApp;
  escalation: EscalationConfig;
}

function fromEnv(env: Record<string, string | undefined>, name: string, where: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new AppError('config_invalid', `${where}: the environment variable ${name} is not set`);
  return value;
}

/** The receivers of toolgate.json, in their order. */
export class Receivers {
  private readonly byName: Map<string, Receiver>;

  constructor(readonly all: readonly Receiver[]) {
    this.byName = new Map(all.map((r) => [r.name, r]));
  }

  get(name: string): Receiver | undefined {
    return this.byName.get(name);
  }

  get size(): number {
    return this.all.length;
  }

  /** Might anyone hear of an event of this type (escalations: whoever a rule names)? */
  listen(type: NotifyEventType): boolean {
    return type === 'approval.escalated' || this.all.some((r) => r.events.has(type));
  }

  /**
   * Who hears of an event: receivers subscribed to its type and the request's sensitivity, and for
   * an escalation also the receivers its rule names, each once.
   */
  forEvent(type: NotifyEventType, sensitivity: Sensitivity, named: readonly string[] = []): Receiver[] {
    return this.all.filter((r) => (r.events.has(type) && r.sensitivity.has(sensitivity)) || (type === 'approval.escalated' && named.includes(r.name)));
  }
}

/** The notification settings of toolgate.json, secrets taken from `env` where the file names a variable. */
export function notifySettings(section: NotifySection, env: Record<string, string | undefined>): NotifySettings {
  const slackConfig = section.slack;
  const slack: SlackApp = {
    signingSecret: slackConfig?.signingSecretEnv ? fromEnv(env, slackConfig.signingSecretEnv, 'slack.signingSecretEnv') : slackConfig?.signingSecret,
    botToken: slackConfig?.botTokenEnv ? fromEnv(env, slackConfig.botTokenEnv, 'slack.botTokenEnv') : slackConfig?.botToken,
    apiUrl: (slackConfig?.apiUrl ?? 'https://slack.com/api').replace(/\/+$/, ''),
    responseUrlBase: slackConfig?.responseUrlBase ?? 'https://hooks.slack.com/',
    teamId: slackConfig?.teamId,
    interactive: false,
  };
  slack.interactive = slack.signingSecret !== undefined && slack.botToken !== undefined;
  const receivers = (section.notify ?? []).map((r: ReceiverConfig, i): Receiver => ({
    name: r.name,
    format: r.format,
    url: r.url ?? (r.channel ? `${slack.apiUrl}/chat.postMessage` : undefined),
    channel: r.channel,
    secret: r.secretEnv ? fromEnv(env, r.secretEnv, `notify.${i}.secretEnv`) : r.secret,
    events: new Set(r.events),
    sensitivity: new Set(r.sensitivity),
    timeoutMs: Math.round(r.timeoutSeconds * 1000),
    concurrency: r.concurrency,
    retry: { maxAttempts: r.retry.maxAttempts, minMs: Math.round(r.retry.minSeconds * 1000), maxMs: Math.round(r.retry.maxSeconds * 1000) },
  }));
  return { receivers: new Receivers(receivers), slack, escalation: section.escalation ?? {} };
}

/** The escalation rules that apply, by sensitivity. */
export function escalationRules(config: EscalationConfig): [Sensitivity, EscalationRule][] {
  return Object.entries(config).filter((e): e is [Sensitivity, EscalationRule] => e[1] !== undefined);
}
