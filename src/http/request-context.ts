import type { ServerResponse } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppEnv } from './context.js';
import { AppError } from '../core/errors.js';
import { withSecurityHeaders } from './security-headers.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type RequestObserver = (c: Context<AppEnv>, durationMs: number) => void;

export interface RequestContextOptions {
  /** Run once per request after the response is ready: metrics, the access log. */
  observers?: RequestObserver[];
  /** Kept up to date so a graceful stop can wait for requests in flight. */
  inflight?: { count: number };
}

/**
 * The first middleware of every request, doing in one frame what would otherwise take three:
 * the request id (the client's `X-Request-Id` when well-formed, else a new UUID, echoed back),
 * the in-flight count, the security headers of every response
 * (errors and pages included) and the observers that see the finished response. One frame
 * matters: a caller held while its approval is pending keeps every middleware frame alive, ten
 * thousand times over.
 */
export function requestContext(options: RequestContextOptions): MiddlewareHandler<AppEnv> {
  const observers = options.observers ?? [];
  const inflight = options.inflight ?? { count: 0 };
  return async function requestContextMiddleware(c, next) {
    const given = c.req.header('x-request-id');
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    c.set('requestId', requestId);
    c.header('X-Request-Id', requestId);
    const started = performance.now();
    inflight.count++;
    try {
      await next();
    } finally {
      const secured = withSecurityHeaders(c.res);
      if (secured !== c.res) c.res = secured;
      inflight.count--;
      const observeAll = () => {
        const ms = performance.now() - started;
        for (const observe of observers) observe(c, ms);
      };
      const settled = c.get('settled');
      if (settled) void settled.then(observeAll);
      else observeAll();
    }
  };
}

/** Route middleware for what machines poll (health checks, scrapes): its requests are logged at debug, so they do not drown the rest. */
export const quietLog: MiddlewareHandler<AppEnv> = function quietLogMiddleware(c, next) {
  c.set('quietLog', true);
  return next();
};

/** 503 `shutting_down` for every route mounted after it (the health check is mounted before). */
export function refuseWhileShuttingDown(isShuttingDown: () => boolean): MiddlewareHandler<AppEnv> {
  return function refuseWhileShuttingDownMiddleware(c, next) {
    if (isShuttingDown()) throw new AppError('shutting_down', 'the gateway is shutting down');
    return next();
  };
}

/**
 * A promise for the moment the Node response behind `c` is finished or its connection is gone:
 * what a streamed body's duration must be measured to. Undefined outside a Node server.
 */
export function responseClosed(c: Context<AppEnv>): Promise<void> | undefined {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) return undefined;
  return new Promise((resolve) => outgoing.once('close', () => resolve()));
}

/** The status the client really got: an accepted WebSocket upgrade is a 101, not the handler's empty 200. */
export function answeredStatus(c: Context<AppEnv>): number {
  const status = c.res.status;
  if (status === 200 && c.req.method === 'GET' && c.req.header('upgrade')?.toLowerCase() === 'websocket') return 101;
  return status;
}

/**
 * 413 for bodies over `maxBytes`. A declared Content-Length is checked from the header alone,
 * without building a web Request; only chunked bodies go through Hono's streaming limit.
 */
export function limitBody(maxBytes: number): MiddlewareHandler<AppEnv> {
  const tooLarge = () => {
    throw new AppError('payload_too_large', `the request body is larger than ${maxBytes} bytes`);
  };
  const streaming = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async function limitBodyMiddleware(c, next) {
    if (BODYLESS.has(c.req.method)) return next();
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (!/^\d+$/.test(length) || Number(length) > maxBytes) tooLarge();
      return next();
    }
    return streaming(c, next);
  };
}
