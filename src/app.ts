import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { approvalsRoutes } from './approvals/approvals.routes.js';
import type { ApprovalService } from './approvals/approvals.service.js';
import { auditRoutes } from './audit/audit.routes.js';
import type { AuthService } from './auth/auth.service.js';
import type { Store } from './db/store.js';
import { authenticate } from './http/auth.middleware.js';
import type { AppEnv } from './http/context.js';
import { AppError, errorBody } from './http/errors.js';
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
  };
  approversOnline?: () => number;
  /** Routes added by other modules (WebSocket, MCP, metrics), mounted after the core ones. */
  extraRoutes?: ((app: Hono<AppEnv>) => void)[];
  /** Paths whose handlers authenticate by themselves (the WebSocket). */
  selfAuthenticatingPaths?: string[];
  /** Middleware that runs first on every request (metrics, rate limits). */
  middleware?: Parameters<Hono<AppEnv>['use']>[1][];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const { settings, logger } = deps;
  const app = new Hono<AppEnv>();

  app.use(
    requestId({
      headerName: 'X-Request-Id',
      generator: () => crypto.randomUUID(),
      limitLength: 128,
    }),
  );
  app.use(async function rejectBadRequestIds(c, next) {
    const given = c.req.header('x-request-id');
    if (given !== undefined && !REQUEST_ID.test(given)) c.set('requestId', crypto.randomUUID());
    await next();
  });
  for (const mw of deps.middleware ?? []) app.use(mw);
  app.use(async function refuseWhileShuttingDown(c, next) {
    if (deps.approvals.isShuttingDown && c.req.path !== '/health') throw new AppError('shutting_down', 'the gateway is shutting down');
    await next();
  });
  app.use(
    bodyLimit({
      maxSize: settings.bodyLimitBytes,
      onError: () => {
        throw new AppError('payload_too_large', `the request body is larger than ${settings.bodyLimitBytes} bytes`);
      },
    }),
  );
  app.use(
    authenticate({
      auth: deps.auth,
      rbacEnabled: settings.rbacEnabled,
      trustUserHeader: settings.trustUserHeader,
      skipPaths: deps.selfAuthenticatingPaths ?? [],
    }),
  );

  app.get('/health', (c) => {
    let db = 'ok';
    try {
      deps.store.ping();
    } catch {
      db = 'error';
    }
    return c.json(
      {
        status: db === 'ok' && !deps.approvals.isShuttingDown ? 'ok' : 'degraded',
        approval_workflow: settings.approvalWorkflowEnabled,
        rbac: settings.rbacEnabled,
        pending: db === 'ok' ? deps.approvals.countPending() : null,
        approvers_online: deps.approversOnline?.() ?? 0,
        db,
      },
      db === 'ok' ? 200 : 503,
    );
  });

  app.route('/', toolsRoutes({ ...deps, rbacEnabled: settings.rbacEnabled, approvalWorkflowEnabled: settings.approvalWorkflowEnabled }));
  app.route('/', approvalsRoutes({ approvals: deps.approvals, rbacEnabled: settings.rbacEnabled }));
  app.route('/', auditRoutes({ store: deps.store }));
  for (const add of deps.extraRoutes ?? []) add(app);

  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`, { requestId: c.get('requestId') }), 404));

  app.onError((err, c) => {
    const requestId = c.get('requestId');
    if (err instanceof AppError) {
      if (err.status === 429 && typeof err.extra.retryAfter === 'number') c.header('Retry-After', String(err.extra.retryAfter));
      if (err.status === 401) c.header('WWW-Authenticate', 'Bearer');
      // The unread rest of the body leaves the connection unusable; tell the client not to reuse it.
      if (err.status === 413) c.header('Connection', 'close');
      return c.json(errorBody(err.code, err.message, { ...err.extra, requestId }), err.status as 400);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 413 ? 'payload_too_large' : status === 401 ? 'unauthorized' : status < 500 ? 'bad_request' : 'internal';
      return c.json(errorBody(code, err.message || 'bad request', { requestId }), status);
    }
    logger.error({ err, requestId, path: c.req.path }, 'unhandled error');
    return c.json(errorBody('internal', 'internal error', { requestId }), 500);
  });

  return app;
}
