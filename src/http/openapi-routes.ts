import { OpenAPIHono, type RouteConfig, type z } from '@hono/zod-openapi';
import type { Handler, MiddlewareHandler } from 'hono';
import { guards } from './guards.js';
import { errorCatalogue, ERROR_CODES } from '../core/errors.js';
import { errorResponseSchema } from '../core/errors.schemas.js';
import type { AppEnv } from './context.js';
import { throwValidationFailure, validJsonBody } from './validation.js';

/**
 * A sub-app whose routes are `createRoute` definitions: their schemas validate the request, type
 * the handler's answers and make /openapi.json. A request that fails them is `validation_failed`.
 */
export function openApiApp(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: throwValidationFailure });
}

/** Who may call an operation: its security requirement, and `x-toolgate-access` for people. */
export type Access = 'open' | 'tool caller' | 'approval.view' | 'approval.manage' | 'admin' | 'metrics';

export function access(who: Access): { security: Record<string, string[]>[]; 'x-toolgate-access': Access } {
  const security: Record<string, string[]>[] = who === 'open' ? [] : who === 'metrics' ? [{}, { metricsToken: [] }] : [{ bearer: [] }];
  return { security, 'x-toolgate-access': who };
}

export const json = <S extends z.ZodType>(schema: S) => ({ 'application/json': { schema } });

/** The documented error answers of a route: each status with the catalogue codes it may carry. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(
    statuses.map((status) => {
      const codes = ERROR_CODES.filter((code) => errorCatalogue[code].status === status && code !== 'bad_message' && code !== 'config_invalid');
      return [status, { description: codes.map((code) => `\`${code}\`: ${errorCatalogue[code].meaning}`).join('; '), content: json(errorResponseSchema) }];
    }),
  ) as Record<number, { description: string; content: ReturnType<typeof json<typeof errorResponseSchema>> }>;
}

/**
 * `app.openapi(route, handler)` for a route that holds its caller for minutes (a tool call waiting
 * for its approver). The route is documented from the same `createRoute` definition, but its
 * middleware and the body's validation (`validJsonBody`, against the route's JSON body schema) run
 * as one layer (`guards`), instead of the middleware plus one validator layer for each of the path
 * parameters, the headers, the media type and the body. Every layer of Hono's onion stays a
 * suspended frame for as long as the caller waits, ten thousand callers at once. Path parameters
 * and headers are then documented only: the handler reads them itself.
 */
export function heldRoute(
  app: OpenAPIHono<AppEnv>,
  route: RouteConfig & { request: { body: { content: { 'application/json': { schema: z.ZodType } } } } },
  options: { middleware: MiddlewareHandler<AppEnv>[]; emptyBodyAs?: unknown },
  handler: Handler<AppEnv>,
): void {
  app.openAPIRegistry.registerPath(route);
  const body = validJsonBody(route.request.body.content['application/json'].schema, 'emptyBodyAs' in options ? { emptyAs: options.emptyBodyAs } : {});
  app.on(route.method.toUpperCase(), route.path.replaceAll(/\/{(.+?)}/g, '/:$1'), guards(...options.middleware, body), handler);
}
