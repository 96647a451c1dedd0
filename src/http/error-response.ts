import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, errorBody, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../logger.js';

/**
 * The HTTP mapper of the error catalogue: status from the code, plus the headers some codes need.
 * Hono's own HTTPExceptions are given a code by their status; anything else is a logged 500.
 */
export function errorResponse(err: Error, c: Context, logger: Pick<Logger, 'error'>): Response {
  const requestId = c.get('requestId') as string | undefined;
  if (err instanceof AppError) {
    if (err.is('rate_limited') && typeof err.extra.retryAfter === 'number') c.header('Retry-After', String(err.extra.retryAfter));
    if (err.status === 401) c.header('WWW-Authenticate', 'Bearer');
    // The unread rest of the body leaves the connection unusable; tell the client not to reuse it.
    if (err.status === 413) c.header('Connection', 'close');
    return c.json(errorBody(err.code as ErrorCode, err.message, { ...err.extra, requestId } as never), err.status as ContentfulStatusCode);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const code: ErrorCode = status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 401 ? 'unauthorized' : status < 500 ? 'bad_request' : 'internal';
    return c.json(errorBody(code, err.message || 'bad request', { requestId }), status);
  }
  logger.error({ err, requestId, path: c.req.path }, 'unhandled error');
  return c.json(errorBody('internal', 'internal error', { requestId }), 500);
}
