import type { NotifyEvent } from './notify.schemas.js';
import type { Receiver, SlackApp } from './receivers.js';
import { toolgateSignature } from './signature.js';
import { slackMessage } from './slack-format.js';

/** What an attempt is: one delivery of one event to one receiver, the attempt's number, and what earlier deliveries left. */
export interface Attempt {
  deliveryId: string;
  attempt: number;
  event: NotifyEvent;
  /** The event's JSON as stored in the outbox (what a json receiver gets, byte for byte). */
  payload: string;
  /** For a Slack channel: the message of the request's `approval.requested` delivery (`{channel, ts}` JSON), to update in place. */
  original: string | null;
}

export interface AttemptResult {
  ok: boolean;
  /** The receiver's HTTP status; null when it never answered. */
  status: number | null;
  /** The first few kilobytes of the answer, for `notify test` and the last error. */
  body: string;
  error?: string;
  /** Trying again cannot help (a redirect, a 4xx such as 404, a Slack error such as channel_not_found): the delivery is dead at once. */
  permanent: boolean;
  /** What to keep for later deliveries (Slack: the posted message's channel and ts). */
  response?: string | null;
}

/** An answer body is read up to this many bytes; the rest is dropped. */
const BODY_KEPT = 4096;

/** Slack Web API errors that no retry fixes. */
const PERMANENT_SLACK_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
]);

/** Events after which a Slack channel's message for the request is updated in place rather than a new one posted. */
const UPDATES_IN_PLACE = new Set(['approval.updated', 'approval.resolved', 'approval.executed']);

export const USER_AGENT = 'toolgate-webhooks/1';

interface Outgoing {
  url: string;
  body: string;
  headers: Record<string, string>;
  /** The Slack Web API answers 200 with `{"ok":false,"error"}` on failure. */
  slackApi: boolean;
}

/** The HTTP request of an attempt: the body the receiver's format asks for, signed. */
export function outgoingRequest(receiver: Receiver, slack: SlackApp, a: Attempt, now: number): Outgoing {
  let url = receiver.url!;
  let body = a.payload;
  let slackApi = false;
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'user-agent': USER_AGENT };
  if (receiver.format === 'slack') {
    const message = slackMessage(a.event, { now, buttons: slack.interactive && receiver.channel !== undefined });
    const quiet = { unfurl_links: false, unfurl_media: false };
    if (receiver.channel !== undefined) {
      slackApi = true;
      headers.authorization = `Bearer ${slack.botToken ?? ''}`;
      const original = UPDATES_IN_PLACE.has(a.event.type) && a.original ? (JSON.parse(a.original) as { channel: string; ts: string }) : null;
      url = `${slack.apiUrl}/${original ? 'chat.update' : 'chat.postMessage'}`;
      body = JSON.stringify(original ? { channel: original.channel, ts: original.ts, ...message } : { channel: receiver.channel, ...message, ...quiet, link_names: false });
    } else {
      body = JSON.stringify({ ...message, ...quiet });
    }
  }
  headers['x-toolgate-event'] = a.event.type;
  headers['x-toolgate-event-id'] = a.event.id;
  headers['idempotency-key'] = a.event.id;
  headers['x-toolgate-delivery'] = a.deliveryId;
  headers['x-toolgate-attempt'] = `${a.deliveryId}.${a.attempt}`;
  if (receiver.secret) headers['x-toolgate-signature'] = toolgateSignature(receiver.secret, body, now);
  return { url, body, headers, slackApi };
}

/**
 * Sends one attempt: POST with a timeout, never following a redirect (a receiver is the URL the
 * operator configured, not wherever it points next), reading at most a few kilobytes back.
 */
export async function sendAttempt(receiver: Receiver, slack: SlackApp, a: Attempt, options: { now: number; signal?: AbortSignal }): Promise<AttemptResult> {
  const out = outgoingRequest(receiver, slack, a, options.now);
  const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(receiver.timeoutMs)]) : AbortSignal.timeout(receiver.timeoutMs);
  let res: Response;
  try {
    res = await fetch(out.url, { method: 'POST', headers: out.headers, body: out.body, redirect: 'manual', signal });
  } catch (err) {
    return { ok: false, status: null, body: '', error: describeFailure(err, receiver.timeoutMs), permanent: false };
  }
  const body = await readSome(res, signal);
  if (res.status >= 300 && res.status < 400) {
    return { ok: false, status: res.status, body, error: `redirect to ${res.headers.get('location') ?? '(no location)'} not followed`, permanent: true };
  }
  if (res.status < 200 || res.status >= 300) {
    const retryable = res.status === 408 || res.status === 425 || res.status === 429 || res.status >= 500;
    return { ok: false, status: res.status, body, error: `HTTP ${res.status}`, permanent: !retryable };
  }
  if (!out.slackApi) return { ok: true, status: res.status, body, permanent: false };
  let answer: { ok?: boolean; error?: string; channel?: string; ts?: string };
  try {
    answer = JSON.parse(body) as typeof answer;
  } catch {
    return { ok: false, status: res.status, body, error: 'Slack answered something other than JSON', permanent: false };
  }
  if (answer.ok !== true) {
    const error = typeof answer.error === 'string' ? answer.error : 'unknown_error';
    return { ok: false, status: res.status, body, error: `Slack: ${error}`, permanent: PERMANENT_SLACK_ERRORS.has(error) };
  }
  const posted = typeof answer.channel === 'string' && typeof answer.ts === 'string' ? JSON.stringify({ channel: answer.channel, ts: answer.ts }) : null;
  return { ok: true, status: res.status, body, permanent: false, response: posted };
}

async function readSome(res: Response, signal: AbortSignal): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < BODY_KEPT && !signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut off (timeout, reset) leaves what was read.
  } finally {
    void reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, BODY_KEPT).toString('utf8');
}

function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (e.name === 'AbortError') return 'stopped (the gateway is shutting down)';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
