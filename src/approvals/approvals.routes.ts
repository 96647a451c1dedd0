import { Hono } from 'hono';
import { z } from 'zod';
import { authenticated, toolCaller } from '../http/auth.middleware.js';
import type { AppEnv } from '../http/context.js';
import { parseQuery, readJson } from '../http/validation.js';
import { APPROVAL_MANAGE, APPROVAL_VIEW } from '../policy/policy.service.js';
import type { ApprovalService } from './approvals.service.js';

export const decisionRequestBody = z
  .object({ tool: z.string().min(1).max(200), arguments: z.record(z.string(), z.unknown()).default({}) })
  .strict();
export const decideBody = z.object({ reason: z.string().trim().min(1, 'a reason is required').max(1000) }).strict();
export const pendingQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) }).strict();
export const waitQuery = z.object({ wait: z.coerce.number().min(0).max(60).optional() }).strict();

export interface ApprovalsRoutesDeps {
  approvals: ApprovalService;
  rbacEnabled: boolean;
}

export function approvalsRoutes(deps: ApprovalsRoutesDeps) {
  const { approvals } = deps;
  const app = new Hono<AppEnv>();
  const ctx = (c: { get(k: 'requestId'): string }) => ({ httpRequestId: c.get('requestId') });

  app.post('/api/approvals', async (c) => {
    const principal = toolCaller(c, deps.rbacEnabled);
    const body = await readJson(c, decisionRequestBody);
    const approval = approvals.requestDecision(principal, body.tool, body.arguments, ctx(c));
    c.header('Location', `/api/approvals/${approval.id}`);
    return c.json({ approval }, 202);
  });

  app.get('/api/approvals/pending', (c) => {
    approvals.requireApprover(c.get('principal'), APPROVAL_VIEW);
    const { limit } = parseQuery(c, pendingQuery);
    const pending = approvals.listPending(limit);
    return c.json({ pending_approvals: pending, count: pending.length });
  });

  app.get('/api/approvals/:id', async (c) => {
    const principal = authenticated(c);
    const { wait } = parseQuery(c, waitQuery);
    const approval = approvals.get(principal, c.req.param('id'));
    if (!wait) return c.json({ approval });
    return c.json({ approval: await approvals.waitUntilSettled(approval.id, wait * 1000, c.req.raw.signal) });
  });

  app.delete('/api/approvals/:id', (c) => {
    const principal = authenticated(c);
    return c.json({ approval: approvals.cancelByRequester(principal, c.req.param('id'), ctx(c)) });
  });

  for (const verdict of ['approve', 'reject'] as const) {
    app.post(`/api/approvals/:id/${verdict}`, async (c) => {
      const approver = approvals.requireApprover(c.get('principal'), APPROVAL_MANAGE);
      const { reason } = await readJson(c, decideBody);
      return c.json({ approval: approvals.decide(approver, c.req.param('id'), verdict, reason, ctx(c)) });
    });
  }

  return app;
}
