import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new API token: 32 random bytes, URL-safe. Shown once; only its hash is stored. */
export function generateToken(): string {
  return `tg_${randomBytes(32).toString('base64url')}`;
}

/** A web console session's secret: 32 random bytes, URL-safe; the browser holds it in an HttpOnly cookie. */
export function generateSessionSecret(): string {
  return `tgs_${randomBytes(32).toString('base64url')}`;
}

export const SESSION_SECRET = /^tgs_[A-Za-z0-9_-]{43}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function tokenPrefix(token: string): string {
  return token.slice(0, 10);
}

/** Constant-time comparison of two hex digests of equal length. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}
