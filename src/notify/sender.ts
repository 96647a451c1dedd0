import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
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

/** Keep-alive connections to receivers, shared by every attempt of this process. */
const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 64 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 64 }) };

export interface Answered {
  status: number;
  location: string | undefined;
  body: string;
}

/**
 * One POST with node:http(s): never follows a redirect (it has no such thing), gives up after
 * `timeoutMs` for the whole exchange, and keeps at most BODY_KEPT bytes of the answer.
 */
export function post(url: string, headers: Record<string, string>, body: string, timeoutMs: number, signal?: AbortSignal): Promise<Answered> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const req = (secure ? httpsRequest : httpRequest)(
      target,
      { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: secure ? agents.https : agents.http, ...(signal ? { signal } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < BODY_KEPT) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: Buffer.concat(chunks).subarray(0, BODY_KEPT).toString('utf8') });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' })), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/**
 * Sends one attempt: POST with a timeout, never following a redirect (a receiver is the URL the
 * operator configured, not wherever it points next), reading at most a few kilobytes back.
 */
export async function sendAttempt(receiver: Receiver, slack: SlackApp, a: Attempt, options: { now: number; signal?: AbortSignal }): Promise<AttemptResult> {
  const out = outgoingRequest(receiver, slack, a, options.now);
  let res: Answered;
  try {
    res = await post(out.url, out.headers, out.body, receiver.timeoutMs, options.signal);
  } catch (err) {
    return { ok: false, status: null, body: '', error: describeFailure(err, receiver.timeoutMs), permanent: false };
  }
  const { body } = res;
  if (res.status >= 300 && res.status < 400) {
    return { ok: false, status: res.status, body, error: `redirect to ${res.location ?? '(no location)'} not followed`, permanent: true };
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

function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (e.name === 'AbortError') return 'stopped (the gateway is shutting down)';
  return e.code ?? e.message ?? String(err);
}
