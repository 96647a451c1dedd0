import type { Logger } from '../logger.js';
import { routeLabel } from '../metrics/metrics.js';
import { answeredStatus, type RequestObserver } from './request-context.js';

export interface RequestLogOptions {
  logger: Logger;
}

/**
 * One log line per HTTP request (at debug for routes marked `quietLog`), written when the exchange is over (a streamed response has
 * ended, a WebSocket has authenticated or closed). `reqId` is the same id
 * the client gets in `X-Request-Id` and the audit events store as `httpRequestId`, so one grep
 * joins a log line, a client's report and the audit trail.
 */
export function requestLog(options: RequestLogOptions): RequestObserver {
  const { logger } = options;
  return function logRequest(c, durationMs) {
    const status = answeredStatus(c);
    const level = c.get('quietLog') ? 'debug' : status >= 500 ? 'error' : 'info';
    // Checked first so that a silent logger costs no object building on the hot path.
    if (!logger.isLevelEnabled(level)) return;
    logger[level](
      {
        reqId: c.get('requestId'),
        method: c.req.method,
        route: routeLabel(c),
        status,
        durationMs: Math.round(durationMs * 100) / 100,
        userId: c.get('principal')?.id ?? null,
      },
      'request',
    );
  };
}
