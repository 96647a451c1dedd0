import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.js';
import type { AuditReads } from './audit-store.js';
import { authenticated } from '../http/auth.middleware.js';
import type { AppEnv } from '../http/context.js';
import { access, errors, json, openApiApp } from '../http/openapi-routes.js';
import { auditPageSchema, auditQuery, auditVerificationSchema, type AuditVerification } from './audit.schemas.js';
import { toAuditView } from './audit.service.js';

const requireAdmin: MiddlewareHandler<AppEnv> = function requireAdminMiddleware(c, next) {
  if (authenticated(c).role !== 'admin') throw new AppError('permission_denied', 'the audit log is for admins');
  return next();
};

export interface AuditRoutesDeps {
  audit: AuditReads;
  callerAuth: MiddlewareHandler<AppEnv>;
  /** Recomputes the chain and holds it to the signed checkpoints (main.ts knows the key). */
  verify?: () => Promise<AuditVerification>;
}

export function auditRoutes(deps: AuditRoutesDeps) {
  const app = openApiApp();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/security/logs/audit',
      tags: ['operators'],
      summary: 'Audit events, newest first (admins only)',
      description: "Newest first: by time, then seq, across every writer's chain. `before` pages backwards: pass the `seq` of the last (oldest) event of the previous page.",
      ...access('admin'),
      middleware: [deps.callerAuth, requireAdmin] as const,
      request: { query: auditQuery },
      responses: { 200: { description: 'events', content: json(auditPageSchema) }, ...errors(400, 401, 403) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const events = (
        await deps.audit.auditPage({ limit: q.limit, user: q.user, tool: q.tool, action: q.action, requestId: q.request, since: q.since ? Date.parse(q.since) : undefined, beforeSeq: q.before })
      ).map(toAuditView);
      return c.json({ events, count: events.length }, 200);
    },
  );
  const verify = deps.verify;
  if (verify) {
    app.openapi(
      createRoute({
        method: 'get',
        path: '/security/logs/audit/verify',
        tags: ['operators'],
        summary: 'Verify the audit log: recompute the hash chain and check it against the signed checkpoints (admins only)',
        description: 'The same checks as `toolgate audit verify`; it reads the whole log, so it takes longer on a large one.',
        ...access('admin'),
        middleware: [deps.callerAuth, requireAdmin] as const,
        responses: { 200: { description: 'the result, whether or not the log verifies', content: json(auditVerificationSchema) }, ...errors(401, 403) },
      }),
      async (c) => c.json(await verify(), 200),
    );
  }
  return app;
}
