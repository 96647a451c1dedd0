import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../logger.js';
import { routeLabel } from '../metrics/metrics.js';
import type { AppEnv } from './context.js';

export interface RequestLogOptions {
  logger: Logger;
  /** Paths polled by machines (health checks, scrapes): logged at debug so they do not drown the rest. */
  quietPaths?: string[];
}

/**
 * One log line per HTTP request, written when the response is ready. `reqId` is the same id
 * the client gets in `X-Request-Id` and the audit events store as `httpRequestId`, so one grep
 * joins a log line, a client's report and the audit trail.
 */
export function requestLog(options: RequestLogOptions): MiddlewareHandler {
  const { logger } = options;
  const quiet = new Set(options.quietPaths ?? []);
  return async function logRequest(ctx, next) {
    // Typed loosely for AppDeps.middleware; the variables are the app's.
    const c = ctx as unknown as Context<AppEnv>;
    const started = performance.now();
    try {
      await next();
    } finally {
      const level = quiet.has(c.req.path) ? 'debug' : c.res.status >= 500 ? 'error' : 'info';
      // Checked first so that a silent logger costs no object building on the hot path.
      if (logger.isLevelEnabled(level)) {
        logger[level](
          {
            reqId: c.get('requestId'),
            method: c.req.method,
            route: routeLabel(c),
            status: c.res.status,
            durationMs: Math.round((performance.now() - started) * 100) / 100,
            userId: c.get('principal')?.id ?? null,
          },
          'request',
        );
      }
    }
  };
}
