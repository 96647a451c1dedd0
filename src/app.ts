import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Hono, MiddlewareHandler } from 'hono';
import { approvalsRoutes } from './approvals/approvals.routes.js';
import type { ApprovalService } from './approvals/approvals.service.js';
import { auditRoutes } from './audit/audit.routes.js';
import type { AuthService } from './auth/auth.service.js';
import type { Store } from './db/store.js';
import { authenticate } from './http/auth.middleware.js';
import { browserGuard } from './http/browser-guard.js';
import type { AppEnv } from './http/context.js';
import { limitBody, requestContext, type RequestObserver } from './http/request-context.js';
import { errorBody } from './core/errors.js';
import { errorResponse } from './http/error-response.js';
import { healthRoutes } from './http/health.js';
import { openApiApp } from './http/openapi-routes.js';
import type { Logger } from './logger.js';
import type { PolicyService } from './policy/policy.service.js';
import { toolsRoutes } from './tools/tools.routes.js';
import type { ToolExecutor } from './tools/upstreams.js';

export interface AppDeps {
  store: Store;
  auth: AuthService;
  policy: PolicyService;
  approvals: ApprovalService;
  tools: ToolExecutor;
  logger: Logger;
  settings: {
    rbacEnabled: boolean;
    approvalWorkflowEnabled: boolean;
    trustUserHeader: boolean;
    bodyLimitBytes: number;
    allowedOrigins: string[];
    publicUrl?: string | undefined;
  };
  approversOnline?: () => number;
  /** Routes added by other modules (WebSocket, MCP, metrics), mounted after the core ones. */
  extraRoutes?: ((app: OpenAPIHono<AppEnv>) => void)[];
  /** Paths whose handlers authenticate by themselves (the WebSocket). */
  selfAuthenticatingPaths?: string[];
  /** Middleware that runs after the request context, before the body limit and auth (rate limits). */
  middleware?: Parameters<Hono<AppEnv>['use']>[1][];
  /** Middleware that runs once the caller is known (the per-token rate limit). */
  authenticatedMiddleware?: MiddlewareHandler<AppEnv>[];
  /** Called once per finished request (metrics, the access log). */
  observers?: RequestObserver[];
  /** Requests in flight, for a graceful stop. */
  inflight?: { count: number };
}

export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const { settings, logger } = deps;
  const app = openApiApp();

  app.use(requestContext({ isShuttingDown: () => deps.approvals.isShuttingDown, observers: deps.observers ?? [], ...(deps.inflight ? { inflight: deps.inflight } : {}) }));
  app.use(browserGuard({ allowedOrigins: settings.allowedOrigins, publicUrl: settings.publicUrl }));
  for (const mw of deps.middleware ?? []) app.use(mw);
  app.use(limitBody(settings.bodyLimitBytes));
  app.use(
    authenticate({
      auth: deps.auth,
      trustUserHeader: settings.trustUserHeader,
      skipPaths: deps.selfAuthenticatingPaths ?? [],
    }),
  );
  for (const mw of deps.authenticatedMiddleware ?? []) app.use(mw);

  app.route('/', healthRoutes(deps));
  app.route('/', toolsRoutes({ ...deps, rbacEnabled: settings.rbacEnabled, approvalWorkflowEnabled: settings.approvalWorkflowEnabled }));
  app.route('/', approvalsRoutes({ approvals: deps.approvals, rbacEnabled: settings.rbacEnabled }));
  app.route('/', auditRoutes({ store: deps.store }));
  for (const add of deps.extraRoutes ?? []) add(app);

  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`, { requestId: c.get('requestId') }), 404));

  app.onError((err, c) => errorResponse(err, c, logger));

  return app;
}
