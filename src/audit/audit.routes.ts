import { Hono } from 'hono';
import { z } from 'zod';
import type { Store } from '../db/store.js';
import { authenticated } from '../http/auth.middleware.js';
import type { AppEnv } from '../http/context.js';
import { AppError } from '../core/errors.js';
import { parseQuery } from '../http/validation.js';
import { toAuditView } from './audit.service.js';

export const auditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(50),
    user: z.string().max(200).optional(),
    tool: z.string().max(200).optional(),
    action: z.string().max(100).optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    before: z.coerce.number().int().positive().optional(),
  })
  .strict();

export function auditRoutes(deps: { store: Store }) {
  const app = new Hono<AppEnv>();
  app.get('/security/logs/audit', (c) => {
    const principal = authenticated(c);
    if (principal.role !== 'admin') throw new AppError('permission_denied', 'the audit log is for admins');
    const q = parseQuery(c, auditQuery);
    const events = deps.store
      .auditPage({ limit: q.limit, user: q.user, tool: q.tool, action: q.action, since: q.since ? Date.parse(q.since) : undefined, beforeSeq: q.before })
      .map(toAuditView);
    return c.json({ events, count: events.length });
  });
  return app;
}
