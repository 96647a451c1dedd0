import { isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { AppError } from '../core/errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSON_MEDIA_TYPE = /^application\/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*(?:utf-8|"utf-8")[ \t]*)?$/i;
const LOOPBACK_NAMES = new Set(['localhost']);

export interface BrowserGuardOptions {
  /** Origins besides the gateway's own that may make state-changing calls (ALLOWED_ORIGINS). */
  allowedOrigins: readonly string[];
  /** PUBLIC_URL: its origin is the gateway's own. */
  publicUrl?: string | undefined;
}

/**
 * The CSRF defence, as Teleport and Vault have it: no CORS at all, and every state-changing
 * request or WebSocket upgrade that a browser makes must come from the gateway's own origin or
 * one the operator listed. A browser always says where a request comes from (`Origin`, and
 * `Sec-Fetch-Site` in current browsers); tools such as the CLI, curl and the MCP SDK send
 * neither and are not affected. JSON bodies must say so (`Content-Type: application/json`),
 * which an HTML form or a no-CORS `fetch` cannot send.
 *
 * A plain function, not an async one: it checks headers and hands over, leaving no frame behind
 * for requests that wait minutes for an approver.
 */
export function browserGuard(options: BrowserGuardOptions): MiddlewareHandler<AppEnv> {
  const allowed = new Set(options.allowedOrigins);
  const publicOrigin = options.publicUrl ? new URL(options.publicUrl).origin : undefined;
  if (publicOrigin) allowed.add(publicOrigin);

  return function browserGuardMiddleware(c, next) {
    const method = c.req.method;
    const upgrade = method === 'GET' && c.req.header('upgrade')?.toLowerCase() === 'websocket';
    if (!SAFE_METHODS.has(method) || upgrade) {
      refuseCrossSite(c, allowed);
      if (hasBody(c) && !JSON_MEDIA_TYPE.test(c.req.header('content-type') ?? '')) {
        throw new AppError('unsupported_media_type', 'request bodies must be JSON sent as "Content-Type: application/json"');
      }
    }
    return next();
  };
}

function hasBody(c: Context): boolean {
  const length = c.req.header('content-length');
  if (length !== undefined) return length !== '0';
  return c.req.header('transfer-encoding') !== undefined;
}

function refuseCrossSite(c: Context, allowed: ReadonlySet<string>) {
  const origin = c.req.header('origin');
  const site = c.req.header('sec-fetch-site');
  if (origin === undefined) {
    // No Origin: not a browser (or a browser navigating, which Sec-Fetch-Site tells).
    if (site === undefined || site === 'same-origin' || site === 'none') return;
    throw new AppError('forbidden_origin', `cross-site requests are refused (Sec-Fetch-Site: ${site.slice(0, 20)})`);
  }
  if (allowed.has(origin)) return;
  if (origin === ownOrigin(c) && (site === undefined || site === 'same-origin')) return;
  throw new AppError('forbidden_origin', `requests from origin ${JSON.stringify(origin.slice(0, 200))} are not allowed; list it in ALLOWED_ORIGINS to allow it`);
}

/**
 * Whether a browser request comes from the gateway's own origin: its `Origin` is PUBLIC_URL's, or
 * the origin it was addressed to (by IP address or localhost) while the browser says same-origin.
 * A console session cookie is honoured on state-changing calls and socket upgrades only then;
 * ALLOWED_ORIGINS, which lets other sites call with a token, does not extend to the cookie.
 */
export function fromGatewayOrigin(c: Context, publicUrl: string | undefined): boolean {
  const origin = c.req.header('origin');
  if (origin === undefined) return false;
  if (publicUrl !== undefined && origin === new URL(publicUrl).origin) return true;
  const site = c.req.header('sec-fetch-site');
  return origin === ownOrigin(c) && (site === undefined || site === 'same-origin');
}

/**
 * The origin the request was addressed to, from its Host header, but only when that host is an
 * IP address or localhost. A DNS name in Host proves nothing: a page can point any name it owns
 * at the gateway's address (DNS rebinding) and then be "same-origin". Gateways reached by name
 * say so with PUBLIC_URL or ALLOWED_ORIGINS.
 */
function ownOrigin(c: Context): string | undefined {
  const host = c.req.header('host');
  if (!host) return undefined;
  let url: URL;
  try {
    url = new URL(`${new URL(c.req.url).protocol}//${host}`);
  } catch {
    return undefined;
  }
  const name = url.hostname.replace(/^\[|\]$/g, '');
  if (!LOOPBACK_NAMES.has(name.toLowerCase()) && isIP(name) === 0) return undefined;
  return url.origin;
}
