import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a signed timestamp may be from now, either way (Slack's own rule; receivers are told to use the same). */
export const SIGNATURE_TOLERANCE_MS = 5 * 60 * 1000;

const hmacHex = (secret: string, text: string) => createHmac('sha256', secret).update(text).digest('hex');

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `X-Toolgate-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function toolgateSignature(secret: string, body: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${hmacHex(secret, `${t}.${body}`)}`;
}

/** Checks an `X-Toolgate-Signature` the way a receiver should: the HMAC, in constant time, and a fresh timestamp. */
export function verifyToolgateSignature(secret: string, header: string | null | undefined, body: string, nowMs: number): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || !v1 || Math.abs(nowMs - t * 1000) > SIGNATURE_TOLERANCE_MS) return false;
  return sameHex(hmacHex(secret, `${t}.${body}`), v1);
}

/** Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the app's signing secret. */
export function slackSignature(signingSecret: string, timestamp: string, rawBody: string): string {
  return `v0=${hmacHex(signingSecret, `v0:${timestamp}:${rawBody}`)}`;
}

/**
 * Verifies a request from Slack (`X-Slack-Request-Timestamp`, `X-Slack-Signature`): the timestamp
 * must be within five minutes of now (a replayed request is refused), the signature must match, in
 * constant time.
 */
export function verifySlackRequest(signingSecret: string, timestamp: string | undefined, signature: string | undefined, rawBody: string, nowMs: number): boolean {
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowMs - Number(timestamp) * 1000) > SIGNATURE_TOLERANCE_MS) return false;
  return sameHex(slackSignature(signingSecret, timestamp, rawBody), signature);
}
