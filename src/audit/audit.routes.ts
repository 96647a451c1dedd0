import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.js';
import type { AuditReads } from './audit-store.js';
import { authenticated } from '../http/auth.middleware.js';
import type { AppEnv } from '../http/context.js';
import { access, errors, json, openApiApp } from '../http/openapi-routes.js';
import { auditPageSchema, auditQuery } from './audit.schemas.js';
import { toAuditView } from './audit.service.js';

const requireAdmin: MiddlewareHandler<AppEnv> = function requireAdminMiddleware(c, next) {
  if (authenticated(c).role !== 'admin') throw new AppError('permission_denied', 'the audit log is for admins');
  return next();
};

export function auditRoutes(deps: { audit: AuditReads; callerAuth: MiddlewareHandler<AppEnv> }) {
  const app = openApiApp();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/security/logs/audit',
      tags: ['operators'],
      summary: 'Audit events, newest first (admins only)',
      description: '`before` pages backwards: pass the smallest `seq` of the previous page.',
      ...access('admin'),
      middleware: [deps.callerAuth, requireAdmin] as const,
      request: { query: auditQuery },
      responses: { 200: { description: 'events', content: json(auditPageSchema) }, ...errors(400, 401, 403) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const events = (
        await deps.audit.auditPage({ limit: q.limit, user: q.user, tool: q.tool, action: q.action, since: q.since ? Date.parse(q.since) : undefined, beforeSeq: q.before })
      ).map(toAuditView);
      return c.json({ events, count: events.length }, 200);
    },
  );
  return app;
}
