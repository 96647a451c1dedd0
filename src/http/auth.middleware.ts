import type { MiddlewareHandler } from 'hono';
import type { AuthService } from '../auth/auth.service.js';
import type { AppEnv } from './context.js';
import { AppError } from '../core/errors.js';
import { ANONYMOUS } from '../auth/auth.service.js';
import type { Principal } from '../policy/policy.service.js';

export interface AuthOptions {
  auth: AuthService;
  trustUserHeader: boolean;
}

/**
 * Route middleware: puts the caller's principal (or undefined: anonymous callers are judged by
 * each route) on the context. Routes that authenticate by themselves (the WebSocket, metrics) do
 * not use it.
 */
export function authenticate(options: AuthOptions): MiddlewareHandler<AppEnv> {
  // A plain function: no frame is kept for calls that then wait for an approver.
  return function authenticateMiddleware(c, next) {
    // Bad credentials reject with 401 here; the rate limiter counts them by client address.
    const credentials = { authorization: c.req.header('authorization'), userHeader: options.trustUserHeader ? c.req.header('x-user-id') : undefined };
    return options.auth.authenticate(credentials).then((principal) => {
      c.set('principal', principal);
      return next();
    });
  };
}

/** A tool caller: any authenticated user, or anyone when RBAC is off. */
export function toolCaller(c: { get(key: 'principal'): Principal | undefined }, rbacEnabled: boolean): Principal {
  const principal = c.get('principal');
  if (principal) return principal;
  if (!rbacEnabled) return ANONYMOUS;
  throw new AppError('unauthorized', 'a bearer token is required');
}

/** Any authenticated user (never anonymous). */
export function authenticated(c: { get(key: 'principal'): Principal | undefined }): Principal {
  const principal = c.get('principal');
  if (!principal) throw new AppError('unauthorized', 'a bearer token is required');
  return principal;
}

/** Route middleware: refuses anonymous callers when RBAC is on, before the route reads its input. */
export function requireToolCaller(rbacEnabled: boolean): MiddlewareHandler<AppEnv> {
  return function requireToolCallerMiddleware(c, next) {
    toolCaller(c, rbacEnabled);
    return next();
  };
}

/** Route middleware: refuses anonymous callers, before the route reads its input. */
export const requireAuthenticated: MiddlewareHandler<AppEnv> = function requireAuthenticatedMiddleware(c, next) {
  authenticated(c);
  return next();
};
