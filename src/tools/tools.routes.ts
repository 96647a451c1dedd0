import { Hono } from 'hono';
import { z } from 'zod';
import type { ApprovalService } from '../approvals/approvals.service.js';
import { needsApproval } from '../approvals/approval.js';
import { toolCaller } from '../http/auth.middleware.js';
import type { AppEnv } from '../http/context.js';
import { AppError } from '../core/errors.js';
import { readJson } from '../http/validation.js';
import type { PolicyService, Principal } from '../policy/policy.service.js';
import type { ToolExecutor } from './upstreams.js';

export const toolCallBody = z.object({ arguments: z.record(z.string(), z.unknown()).default({}) }).strict();

export interface ToolsRoutesDeps {
  approvals: ApprovalService;
  tools: ToolExecutor;
  policy: PolicyService;
  rbacEnabled: boolean;
  approvalWorkflowEnabled: boolean;
}

/** The tools a principal may call, with what the gate will do with each. */
export function visibleTools(deps: ToolsRoutesDeps, principal: Principal) {
  return deps.tools
    .list()
    .map((tool) => ({ tool, policy: deps.policy.resolve(tool.name, tool) }))
    .filter(({ policy }) => !deps.rbacEnabled || policy.roles.has(principal.role))
    .map(({ tool, policy }) => ({
      name: tool.name,
      title: tool.title ?? null,
      description: tool.description,
      sensitivity: policy.sensitivity,
      requiresApproval: deps.approvalWorkflowEnabled && needsApproval(policy.sensitivity),
      inputSchema: tool.inputSchema,
      annotations: tool.annotations ?? {},
    }));
}

export function toolsRoutes(deps: ToolsRoutesDeps) {
  const app = new Hono<AppEnv>();

  app.get('/tools', (c) => {
    const tools = visibleTools(deps, toolCaller(c, deps.rbacEnabled));
    return c.json({ tools, count: tools.length });
  });

  app.post('/tools/:name/call', async (c) => {
    const principal = toolCaller(c, deps.rbacEnabled);
    const name = c.req.param('name');
    if (name.length > 200) throw new AppError('unknown_tool', 'unknown tool');
    const body = await readJson(c, toolCallBody, { emptyAs: {} });
    const respondAsync = /\brespond-async\b/i.test(c.req.header('prefer') ?? '');
    const outcome = await deps.approvals.callTool(principal, name, body.arguments, respondAsync ? 'async' : 'wait', {
      // Read lazily: creating the request's AbortSignal costs, and only a waiting call needs it.
      get signal() {
        return c.req.raw.signal;
      },
      httpRequestId: c.get('requestId'),
    });
    switch (outcome.kind) {
      case 'ran':
        return c.json({ result: outcome.result });
      case 'accepted':
        c.header('Location', `/api/approvals/${outcome.approval.id}`);
        c.header('Preference-Applied', 'respond-async');
        return c.json({ approval: outcome.approval }, 202);
      case 'approved':
        return c.json({ result: outcome.result, approval: outcome.approval });
    }
  });

  return app;
}
