import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { outcomeError } from '../approvals/gate.js';
import { AppError } from '../core/errors.js';
import { requireToolCaller, toolCaller } from '../http/auth.middleware.js';
import type { AppEnv } from '../http/context.js';
import { access, errors, heldRoute, json, openApiApp } from '../http/openapi-routes.js';
import { validBody } from '../http/validation.js';
import { approvalEnvelopeSchema } from '../approvals/approvals.schemas.js';
import { visibleTools, type ToolCatalogDeps } from './catalog.js';
import { toolCallBody, toolCallHeaders, toolCallResultSchema, toolListSchema, toolNameParams } from './tools.schemas.js';

export interface ToolsRoutesDeps extends ToolCatalogDeps {
  callerAuth: MiddlewareHandler<AppEnv>;
  /** Counts the call against the caller's rate limit. */
  toolCallLimit: MiddlewareHandler<AppEnv>;
}

/** A name longer than any tool's is not looked up (nor its body read). */
const knownLength: MiddlewareHandler<AppEnv> = function toolNameLengthMiddleware(c, next) {
  if (c.req.param('name')!.length > 200) throw new AppError('unknown_tool', 'unknown tool');
  return next();
};

export function toolsRoutes(deps: ToolsRoutesDeps) {
  const app = openApiApp();

  app.openapi(
    createRoute({
      method: 'get',
      path: '/tools',
      tags: ['tool callers'],
      summary: 'The tools this caller may call, with sensitivity and input schema',
      ...access('tool caller'),
      middleware: [deps.callerAuth] as const,
      responses: { 200: { description: 'tools', content: json(toolListSchema) }, ...errors(401) },
    }),
    (c) => {
      const tools = visibleTools(deps, toolCaller(c, deps.rbacEnabled));
      return c.json({ tools, count: tools.length }, 200);
    },
  );

  heldRoute(
    app,
    createRoute({
      method: 'post',
      path: '/tools/{name}/call',
      tags: ['tool callers'],
      summary: 'Call a tool through the gate',
      description:
        'LOW/MEDIUM tools (or any tool with APPROVAL_WORKFLOW_ENABLED=false) run at once. HIGH/CRITICAL tools wait for the decision; ' +
        'with `Prefer: respond-async` the answer is 202 with the approval and a Location to poll. An empty body is `{"arguments":{}}`.',
      ...access('tool caller'),
      request: {
        params: toolNameParams,
        headers: toolCallHeaders,
        body: { required: true, content: json(toolCallBody) },
      },
      responses: {
        200: { description: 'the tool ran; `result` is the MCP CallToolResult (and `approval` when it needed one)', content: json(toolCallResultSchema) },
        202: { description: 'accepted for approval (Prefer: respond-async); `Location` is where to poll it', content: json(approvalEnvelopeSchema) },
        ...errors(400, 401, 403, 404, 408, 409, 413, 415, 429, 502, 503),
      },
    }),
    { middleware: [deps.callerAuth, deps.toolCallLimit, requireToolCaller(deps.rbacEnabled), knownLength], emptyBodyAs: {} },
    async (c) => {
      const principal = toolCaller(c, deps.rbacEnabled);
      const body = validBody(c, toolCallBody);
      const respondAsync = /\brespond-async\b/i.test(c.req.header('prefer') ?? '');
      const outcome = await deps.approvals.gate.callTool(principal, c.req.param('name')!, body.arguments, respondAsync ? 'async' : 'wait', {
        // Read lazily: creating the request's AbortSignal costs, and only a waiting call needs it.
        get signal() {
          return c.req.raw.signal;
        },
        httpRequestId: c.get('requestId'),
      });
      switch (outcome.kind) {
        case 'ran':
          return c.json({ result: outcome.result }, 200);
        case 'accepted':
          c.header('Location', `/api/approvals/${outcome.approval.id}`);
          c.header('Preference-Applied', 'respond-async');
          return c.json({ approval: outcome.approval }, 202);
        case 'approved-and-ran':
          return c.json({ result: outcome.result, approval: outcome.approval }, 200);
        default:
          // Rejected, expired, cancelled, refused: the catalogue's error, answered by the app's error mapper.
          throw outcomeError(outcome)!;
      }
    },
  );

  return app;
}
