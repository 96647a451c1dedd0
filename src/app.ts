import type { OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { approvalsRoutes } from './approvals/approvals.routes.js';
import type { ApprovalCore } from './approvals/core.js';
import { auditRoutes } from './audit/audit.routes.js';
import type { AuditVerification } from './audit/audit.schemas.js';
import type { AuthService } from './auth/auth.service.js';
import type { ConsoleSessions } from './auth/sessions.service.js';
import type { ConsoleAssets } from './console/assets.js';
import { consoleRoutes } from './console/console.routes.js';
import type { Persistence } from './core/persistence.js';
import { authenticate } from './http/auth.middleware.js';
import { browserGuard } from './http/browser-guard.js';
import { guards } from './http/guards.js';
import type { AppEnv } from './http/context.js';
import { limitBody, quietLog, refuseWhileShuttingDown, requestContext, type RequestObserver } from './http/request-context.js';
import { docsRoutes } from './http/openapi.js';
import { errorBody } from './core/errors.js';
import { errorResponse } from './http/error-response.js';
import { healthRoutes } from './http/health.js';
import { openApiApp } from './http/openapi-routes.js';
import type { Logger } from './logger.js';
import type { PolicyService } from './policy/policy.service.js';
import { toolsRoutes } from './tools/tools.routes.js';
import type { ReceiptSigner } from './receipts/receipts.js';
import { receiptsRoutes } from './receipts/receipts.routes.js';
import type { ToolExecutor } from './tools/upstreams.js';

export interface AppDeps {
  store: Persistence;
  auth: AuthService;
  policy: PolicyService;
  approvals: ApprovalCore;
  tools: ToolExecutor;
  logger: Logger;
  settings: {
    rbacEnabled: boolean;
    approvalWorkflowEnabled: boolean;
    trustUserHeader: boolean;
    bodyLimitBytes: number;
    allowedOrigins: string[];
    publicUrl?: string | undefined;
    trustProxy?: number;
  };
  /** The web console's sessions; without them, no console is served and no session cookie is accepted. */
  console?: { sessions: ConsoleSessions; assets: ConsoleAssets };
  /** Verifies the audit log for GET /security/logs/audit/verify. */
  verifyAudit?: () => Promise<AuditVerification>;
  approversOnline?: () => number;
  /** Signs receipts; serves their public keys at /.well-known/jwks.json. */
  receipts?: ReceiptSigner | undefined;
  /** Rate limits (main.ts builds them from the configuration); none when absent. */
  limits?: RouteLimits;
  /** Modules that serve their own routes (the WebSocket, MCP, metrics), mounted after the API as sub-apps. */
  modules?: ((kit: ModuleKit) => OpenAPIHono<AppEnv>)[];
  /** Called once per finished request (metrics, the access log). */
  observers?: RequestObserver[];
  /** Requests in flight, for a graceful stop. */
  inflight?: { count: number };
}

export interface RouteLimits {
  /** Refuses addresses that keep failing authentication, and counts their 401s. */
  authFailures: MiddlewareHandler;
  /** The same for the health check, which lets a probe without credentials through. */
  probes: MiddlewareHandler;
  /** One tool call against the caller's budget, on the routes that run or ask to run a tool. */
  toolCalls: MiddlewareHandler<AppEnv>;
}

/** What a module's sub-app may put in front of its routes. */
export interface ModuleKit {
  /** Authenticates the caller from its bearer token (or X-User-ID when trusted). */
  callerAuth: MiddlewareHandler<AppEnv>;
}

const pass: MiddlewareHandler = (_c, next) => next();
const NO_LIMITS: RouteLimits = { authFailures: pass, probes: pass, toolCalls: pass };

/**
 * The HTTP app. Every module is a sub-app whose routes carry their own middleware (auth, rate
 * limits, body parsing); what is shared is mounted with `use` and, as always in Hono, applies to
 * the routes mounted after it. The health check comes first, so that a load balancer sees the
 * gateway while it shuts down and past an address's failed-authentication block.
 */
export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const { settings, logger } = deps;
  const app = openApiApp();

  const limits = deps.limits ?? NO_LIMITS;
  const callerAuth = authenticate({ auth: deps.auth, trustUserHeader: settings.trustUserHeader });
  // The approver routes also accept the console's session cookie; tool calls take tokens only.
  const approverAuth = deps.console
    ? authenticate({ auth: deps.auth, trustUserHeader: settings.trustUserHeader, consoleSessions: { publicUrl: settings.publicUrl } })
    : callerAuth;
  const api = { callerAuth, toolCallLimit: limits.toolCalls, rbacEnabled: settings.rbacEnabled };

  app.use(requestContext({ observers: deps.observers ?? [], ...(deps.inflight ? { inflight: deps.inflight } : {}) }));
  app.route('/', healthRoutes({ ...deps, middleware: [quietLog, limits.probes, callerAuth] }));
  app.use(guards(refuseWhileShuttingDown(() => deps.approvals.isShuttingDown), browserGuard({ allowedOrigins: settings.allowedOrigins, publicUrl: settings.publicUrl })));
  app.use(limits.authFailures);
  app.use(limitBody(settings.bodyLimitBytes));

  app.route('/', toolsRoutes({ ...deps, ...api, approvalWorkflowEnabled: settings.approvalWorkflowEnabled }));
  app.route('/', approvalsRoutes({ approvals: deps.approvals, ...api, callerAuth: approverAuth }));
  app.route('/', auditRoutes({ audit: deps.store.audit, callerAuth: approverAuth, ...(deps.verifyAudit ? { verify: deps.verifyAudit } : {}) }));
  if (deps.console) {
    const cookies = { publicUrl: settings.publicUrl, trustProxy: settings.trustProxy ?? 0 };
    app.route('/', consoleRoutes({ ...deps.console, auth: deps.auth, policy: deps.policy, consoleAuth: approverAuth, cookies, grantCaps: deps.approvals.requests.grantCaps }));
  }
  if (deps.receipts) app.route('/', receiptsRoutes({ receipts: deps.receipts }));
  for (const mount of deps.modules ?? []) app.route('/', mount({ callerAuth }));
  app.route('/', docsRoutes(app, { callerAuth }));

  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`, { requestId: c.get('requestId') }), 404));

  app.onError((err, c) => errorResponse(err, c, logger));

  return app;
}
