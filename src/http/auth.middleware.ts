import type { MiddlewareHandler } from 'hono';
import type { AuthService } from '../auth/auth.service.js';
import type { AppEnv } from './context.js';
import { AppError } from '../core/errors.js';
import { ANONYMOUS } from '../auth/auth.service.js';
import type { Principal } from '../policy/policy.service.js';
import { fromGatewayOrigin } from './browser-guard.js';
import { sessionSecretOf } from './session-cookie.js';

export interface AuthOptions {
  auth: AuthService;
  trustUserHeader: boolean;
  /**
   * Accept the web console's session cookie when no Authorization header is sent (the approver
   * routes). Its state-changing calls must then come from the gateway's own origin.
   */
  consoleSessions?: { publicUrl: string | undefined };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Route middleware: puts the caller's principal (or undefined: anonymous callers are judged by
 * each route) on the context. Routes that authenticate by themselves (the WebSocket, metrics) do
 * not use it.
 */
export function authenticate(options: AuthOptions): MiddlewareHandler<AppEnv> {
  // A plain function: no frame is kept for calls that then wait for an approver.
  return function authenticateMiddleware(c, next) {
    // Bad credentials reject with 401 here; the rate limiter counts them by client address.
    const authorization = c.req.header('authorization');
    const session = options.consoleSessions && authorization === undefined ? sessionSecretOf(c) : undefined;
    const credentials = { authorization, userHeader: options.trustUserHeader ? c.req.header('x-user-id') : undefined, session };
    return options.auth.authenticate(credentials).then((principal) => {
      if (principal?.sessionId && !SAFE_METHODS.has(c.req.method) && !fromGatewayOrigin(c, options.consoleSessions?.publicUrl)) {
        throw new AppError('forbidden_origin', 'a console session acts only from the gateway\'s own pages (Origin must be the gateway\'s; set PUBLIC_URL when it is reached by name)');
      }
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
