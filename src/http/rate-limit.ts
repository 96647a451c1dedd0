import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import type { Principal } from '../policy/policy.service.js';
import type { AppEnv } from './context.js';
import { AppError } from '../core/errors.js';

export interface RateLimitOptions {
  /** Tool calls per token (or per client address without a token) per minute; 0 turns the limit off. */
  toolCallsPerMinute: number;
  /** Failed authentications (401) per client address per minute; 0 turns the limit off. */
  authFailuresPerMinute: number;
  /** Proxy hops in front of the gateway whose X-Forwarded-For entries are trusted (0: none). */
  trustProxy: number;
  /** Keys remembered per limit; the least recently seen is forgotten first (default 10,000). */
  maxKeys?: number;
  now?: () => number;
  /**
   * Counts tool calls where every instance shares them (SharedWindows, on PostgreSQL): the limit
   * then holds across the cluster. Without it, each process counts its own.
   */
  sharedToolCalls?: { take(key: string, n: number, limit: number): Promise<number> };
}

/**
 * Token buckets keyed by string, refilled lazily on access: O(1) per hit, no timer per key, and
 * at most `maxKeys` entries (a Map keeps insertion order, so re-inserting on each hit makes the
 * first key the least recently seen one, which is the one evicted).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    private readonly capacity: number,
    private readonly maxKeys: number,
    private readonly now: () => number,
  ) {
    this.perMs = capacity / 60_000;
  }

  private current(key: string): { tokens: number; at: number } {
    const now = this.now();
    const bucket = this.buckets.get(key);
    if (!bucket) return { tokens: this.capacity, at: now };
    this.buckets.delete(key);
    return { tokens: Math.min(this.capacity, bucket.tokens + (now - bucket.at) * this.perMs), at: now };
  }

  private store(key: string, bucket: { tokens: number; at: number }) {
    if (bucket.tokens >= this.capacity) return; // a full bucket is the same as no bucket
    if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(key, bucket);
  }

  /** Takes `n` tokens, or none; returns 0 when allowed, else the seconds until `n` are available. */
  take(key: string, n = 1): number {
    const bucket = this.current(key);
    if (bucket.tokens < n) {
      this.store(key, bucket);
      return this.secondsUntil(bucket.tokens, n);
    }
    bucket.tokens -= n;
    this.store(key, bucket);
    return 0;
  }

  /** Seconds until `key` may act again without taking anything; 0 when it may now. */
  blockedFor(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    const tokens = Math.min(this.capacity, bucket.tokens + (this.now() - bucket.at) * this.perMs);
    return tokens >= 1 ? 0 : this.secondsUntil(tokens, 1);
  }

  private secondsUntil(tokens: number, n: number): number {
    return Math.max(1, Math.ceil((Math.min(n, this.capacity) - tokens) / this.perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * The client's address: the socket's, unless `trustProxy` hops of proxies stand in front. Each
 * proxy appends the address it was reached from to X-Forwarded-For, so the entry `trustProxy`
 * from the right is the one the outermost trusted proxy saw; anything left of it was written by
 * the client and proves nothing. A header shorter than that did not come through the proxies,
 * and the socket's address is used.
 */
export function clientAddress(c: Context, trustProxy: number): string {
  if (trustProxy > 0) {
    const entries = c.req.header('x-forwarded-for')?.split(',');
    const entry = entries && entries.length >= trustProxy ? entries[entries.length - trustProxy]!.trim() : '';
    if (isIP(entry) !== 0) return entry;
  }
  const env = c.env as { incoming?: IncomingMessage; server?: { incoming?: IncomingMessage } } | undefined;
  const incoming = env?.incoming ?? env?.server?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

/**
 * Whose budget a call spends: the token's (however the header was spelled), the user's when the
 * identity came from X-User-ID, or the client address's for anonymous callers (RBAC off).
 */
function callerKey(principal: Principal | undefined, address: () => string): string {
  if (principal?.tokenId !== undefined) return `t:${principal.tokenId}`;
  if (principal && !principal.anonymous) return `u:${principal.id}`;
  return `a:${address()}`;
}

export interface RateLimiter {
  /** Before authentication: refuses addresses that keep failing it, and counts their 401s. */
  middleware: MiddlewareHandler;
  /** The same for the health check, except that a probe without credentials is never refused. */
  probes: MiddlewareHandler;
  /** After authentication, on the routes that run (or ask to run) a tool: counts one call against the caller's budget. */
  toolCalls: MiddlewareHandler<AppEnv>;
  /** Spends `n` calls of the caller's budget at once (an MCP batch), or throws 429 spending none. */
  takeToolCalls(c: Context, principal: Principal | undefined, n: number): Promise<void>;
  /** Counts a failed authentication seen elsewhere (a WebSocket refused with 4401). */
  recordAuthFailure(address: string): void;
  /** Entries held, for the flood tests: bounded by maxKeys each. */
  sizes(): { toolCalls: number; authFailures: number };
}

/**
 * 429 `rate_limited` with Retry-After when a caller calls tools faster than its limit, or when a
 * client address keeps failing authentication. Failures are counted on every path, /health
 * included; only a /health probe without credentials is never refused, so that a load balancer
 * behind which callers guessed tokens still sees the gateway up.
 */
export function rateLimit(options: RateLimitOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 10_000;
  const calls = options.toolCallsPerMinute > 0 ? new TokenBuckets(options.toolCallsPerMinute, maxKeys, now) : null;
  const failures = options.authFailuresPerMinute > 0 ? new TokenBuckets(options.authFailuresPerMinute, maxKeys, now) : null;

  const shared = options.toolCallsPerMinute > 0 ? options.sharedToolCalls : undefined;
  const refuse = (wait: number) => {
    if (wait > 0) throw new AppError('rate_limited', `more than ${options.toolCallsPerMinute} tool calls a minute; try again later`, { retryAfter: wait });
  };
  const takeHere = (c: Context, principal: Principal | undefined, n: number) => {
    if (calls) refuse(calls.take(callerKey(principal, () => clientAddress(c, options.trustProxy)), n));
  };
  const takeToolCalls = async (c: Context, principal: Principal | undefined, n: number) => {
    if (shared) refuse(await shared.take(callerKey(principal, () => clientAddress(c, options.trustProxy)), n, options.toolCallsPerMinute));
    else takeHere(c, principal, n);
  };

  const failureLimit = (letProbesThrough: boolean): MiddlewareHandler =>
    async function authFailureLimitMiddleware(c, next) {
      if (!failures) return next();
      const address = clientAddress(c, options.trustProxy);
      const probe = letProbesThrough && c.req.header('authorization') === undefined && c.req.header('x-user-id') === undefined;
      const wait = probe ? 0 : failures.blockedFor(address);
      if (wait > 0) throw new AppError('rate_limited', 'too many failed authentications from this address; try again later', { retryAfter: wait });
      await next();
      if (c.res.status === 401) failures.take(address);
    };

  // A plain function when counting here: no frame is kept for calls that then wait for an approver.
  const toolCalls: MiddlewareHandler<AppEnv> = shared
    ? async function sharedToolCallLimitMiddleware(c, next) {
        await takeToolCalls(c, c.get('principal'), 1);
        return next();
      }
    : function toolCallLimitMiddleware(c, next) {
        takeHere(c, c.get('principal'), 1);
        return next();
      };

  return {
    middleware: failureLimit(false),
    probes: failureLimit(true),
    toolCalls,
    takeToolCalls,
    recordAuthFailure: (address) => void failures?.take(address),
    sizes: () => ({ toolCalls: calls?.size ?? 0, authFailures: failures?.size ?? 0 }),
  };
}
