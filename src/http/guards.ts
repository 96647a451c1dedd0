import type { Env, MiddlewareHandler } from 'hono';

/**
 * Runs several checks as one middleware layer. A check is a middleware that only checks and sets
 * (it throws, or answers, or ends with `return next()` and does nothing after it). Each layer of
 * Hono's onion is a suspended frame for as long as the request lasts, and a caller waiting for an
 * approver lasts minutes, ten thousand of them at once: one layer instead of five keeps four
 * frames per waiting caller fewer. A middleware that works after `next()` (a limit that counts the
 * responses, a body limit that reads the stream) must not be a check.
 */
export function guards<E extends Env>(...checks: MiddlewareHandler<E>[]): MiddlewareHandler<E> {
  return async function guardsMiddleware(c, next) {
    for (const check of checks) {
      let passed = false;
      const answer = await check(c, () => {
        passed = true;
        return Promise.resolve();
      });
      if (!passed) return answer ?? c.res;
    }
    return next();
  };
}
