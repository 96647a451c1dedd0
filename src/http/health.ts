import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import type { ApprovalCore } from '../approvals/core.js';
import type { Persistence } from '../core/persistence.js';
import { healthSchema, type Health } from './health.schemas.js';
import { access, json, openApiApp } from './openapi-routes.js';

export interface HealthDeps {
  store: Persistence;
  approvals: ApprovalCore;
  settings: { rbacEnabled: boolean; approvalWorkflowEnabled: boolean };
  approversOnline?: (() => number) | undefined;
  /** In front of the route: the quiet log, the probe-aware failure limit, authentication. */
  middleware: MiddlewareHandler<AppEnv>[];
}

export function healthRoutes(deps: HealthDeps) {
  const app = openApiApp();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      tags: ['operators'],
      summary: 'Liveness and readiness',
      ...access('open'),
      middleware: deps.middleware,
      responses: { 200: { description: 'healthy', content: json(healthSchema) }, 503: { description: 'the database cannot be read', content: json(healthSchema) } },
    }),
    async (c) => {
      let db: Health['db'] = 'ok';
      let pending: number | null = null;
      try {
        await deps.store.ping();
        pending = await deps.approvals.views.countPending();
      } catch {
        db = 'error';
      }
      const health: Health = {
        status: db === 'ok' && !deps.approvals.isShuttingDown ? 'ok' : 'degraded',
        approval_workflow: deps.settings.approvalWorkflowEnabled,
        rbac: deps.settings.rbacEnabled,
        pending,
        approvers_online: deps.approversOnline?.() ?? 0,
        db,
      };
      return db === 'ok' ? c.json(health, 200) : c.json(health, 503);
    },
  );
  return app;
}
