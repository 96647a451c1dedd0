import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from './errors.js';

export interface RateLimitOptions {
  /** Tool calls per token (or per client address without a token) per minute; 0 turns the limit off. */
  toolCallsPerMinute: number;
  /** Failed authentications (401) per client address per minute; 0 turns the limit off. */
  authFailuresPerMinute: number;
  /** Take the client address from X-Forwarded-For (only behind a trusted proxy). */
  trustProxy: boolean;
  /** Keys remembered per limit; the least recently seen is forgotten first (default 10,000). */
  maxKeys?: number;
  now?: () => number;
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

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const bucket = this.current(key);
    if (bucket.tokens < 1) {
      this.store(key, bucket);
      return this.secondsUntilOne(bucket.tokens);
    }
    bucket.tokens -= 1;
    this.store(key, bucket);
    return 0;
  }

  /** Seconds until `key` may act again without taking anything; 0 when it may now. */
  blockedFor(key: string): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return 0;
    const tokens = Math.min(this.capacity, bucket.tokens + (this.now() - bucket.at) * this.perMs);
    return tokens >= 1 ? 0 : this.secondsUntilOne(tokens);
  }

  private secondsUntilOne(tokens: number): number {
    return Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }
}

const TOOL_CALL = /^\/tools\/[^/]+\/call$/;

/** Requests that run (or ask to run) a tool: the ones the per-token limit counts. */
function isToolCall(method: string, path: string): boolean {
  return method === 'POST' && (TOOL_CALL.test(path) || path === '/api/approvals' || path === '/mcp');
}

export function clientAddress(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header('x-forwarded-for')?.split(',')[0]?.trim();
    if (forwarded) return forwarded.slice(0, 64);
  }
  const env = c.env as { incoming?: IncomingMessage; server?: { incoming?: IncomingMessage } } | undefined;
  const incoming = env?.incoming ?? env?.server?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

function tokenKey(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  // Keyed by a digest so that no token is kept in memory.
  return `t:${createHash('sha256').update(authorization).digest('base64url')}`;
}

export interface RateLimiter {
  middleware: MiddlewareHandler;
  /** Counts a failed authentication seen elsewhere (a WebSocket refused with 4401). */
  recordAuthFailure(address: string): void;
  /** Entries held, for the flood tests: bounded by maxKeys each. */
  sizes(): { toolCalls: number; authFailures: number };
}

/**
 * 429 `rate_limited` with Retry-After when a token calls tools faster than its limit, or when a
 * client address keeps failing authentication. Runs before authentication; a 401 from further
 * in counts as a failure for the address it came from.
 */
export function rateLimit(options: RateLimitOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 10_000;
  const calls = options.toolCallsPerMinute > 0 ? new TokenBuckets(options.toolCallsPerMinute, maxKeys, now) : null;
  const failures = options.authFailuresPerMinute > 0 ? new TokenBuckets(options.authFailuresPerMinute, maxKeys, now) : null;

  const middleware: MiddlewareHandler = async function rateLimitMiddleware(c, next) {
    if (c.req.path === '/health') return next();
    const address = failures ? clientAddress(c, options.trustProxy) : '';
    if (failures) {
      const wait = failures.blockedFor(address);
      if (wait > 0) throw new AppError('rate_limited', 'too many failed authentications from this address; try again later', { retryAfter: wait });
    }
    if (calls && isToolCall(c.req.method, c.req.path)) {
      const key = tokenKey(c.req.header('authorization')) ?? `a:${address || clientAddress(c, options.trustProxy)}`;
      const wait = calls.take(key);
      if (wait > 0) throw new AppError('rate_limited', `more than ${options.toolCallsPerMinute} tool calls a minute; try again later`, { retryAfter: wait });
    }
    await next();
    if (failures && c.res.status === 401) failures.take(address);
  };

  return {
    middleware,
    recordAuthFailure: (address) => void failures?.take(address),
    sizes: () => ({ toolCalls: calls?.size ?? 0, authFailures: failures?.size ?? 0 }),
  };
}
