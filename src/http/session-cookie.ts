import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { SESSION_COOKIE } from '../auth/sessions.service.js';

export interface CookieSettings {
  /** PUBLIC_URL: https there means the cookie is Secure. */
  publicUrl?: string | undefined;
  /** Proxy hops whose X-Forwarded-Proto is trusted (TRUST_PROXY). */
  trustProxy?: number;
}

/** The console session's secret from its cookie, if the request carries one. */
export function sessionSecretOf(c: Context): string | undefined {
  return getCookie(c, SESSION_COOKIE);
}

/**
 * Whether the browser reached the gateway over HTTPS: the request's own scheme, PUBLIC_URL's, or
 * a trusted proxy's X-Forwarded-Proto. The cookie is then Secure, so it never travels in clear.
 */
export function reachedOverHttps(c: Context, settings: CookieSettings): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true;
  if (settings.publicUrl?.startsWith('https:')) return true;
  if ((settings.trustProxy ?? 0) > 0) return c.req.header('x-forwarded-proto')?.split(',').pop()?.trim().toLowerCase() === 'https';
  return false;
}

/** HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over HTTPS, gone when the session expires. */
export function setSessionCookie(c: Context, secret: string, expiresAt: number, settings: CookieSettings) {
  setCookie(c, SESSION_COOKIE, secret, {
    httpOnly: true,
    sameSite: 'Strict',
    secure: reachedOverHttps(c, settings),
    path: '/',
    expires: new Date(expiresAt),
  });
}

export function clearSessionCookie(c: Context, settings: CookieSettings) {
  deleteCookie(c, SESSION_COOKIE, { httpOnly: true, sameSite: 'Strict', secure: reachedOverHttps(c, settings), path: '/' });
}
