import type { MiddlewareHandler } from 'hono';
import type { AuthService } from '../auth/auth.service.js';
import type { AppEnv } from './context.js';
import { AppError } from './errors.js';
import { ANONYMOUS } from '../auth/auth.service.js';
import type { Principal } from '../policy/policy.service.js';

export interface AuthOptions {
  auth: AuthService;
  /** When false, callers without credentials pass as the anonymous principal. */
  rbacEnabled: boolean;
  trustUserHeader: boolean;
  onFailure?: (key: string) => void;
  /** Paths that authenticate on their own (the WebSocket closes with 4401 instead of answering 401). */
  skipPaths?: string[];
}

/** Puts the caller's principal (or undefined) on the context. Bad credentials are always 401. */
export function authenticate(options: AuthOptions): MiddlewareHandler<AppEnv> {
  const skip = new Set(options.skipPaths ?? []);
  return async function authenticateMiddleware(c, next) {
    if (skip.has(c.req.path)) {
      c.set('principal', undefined);
      return next();
    }
    try {
      const principal = options.auth.authenticate({
        authorization: c.req.header('authorization'),
        userHeader: options.trustUserHeader ? c.req.header('x-user-id') : undefined,
      });
      c.set('principal', principal);
    } catch (err) {
      options.onFailure?.(c.req.header('x-forwarded-for') ?? 'direct');
      throw err;
    }
    await next();
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
