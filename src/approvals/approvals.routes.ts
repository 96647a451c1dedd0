import { createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../http/context.js';
import { toolCaller, requireToolCaller, authenticated, requireAuthenticated } from '../http/auth.middleware.js';
import { access, errors, json, openApiApp } from '../http/openapi-routes.js';
import { jsonBody } from '../http/validation.js';
import { APPROVAL_MANAGE, APPROVAL_VIEW } from '../policy/policy.service.js';
import {
  approvalEnvelopeSchema,
  approveAnswerSchema,
  approveBody,
  grantEnvelopeSchema,
  grantPreviewBody,
  grantPreviewSchema,
  grantListSchema,
  grantsQuery,
  decideBody,
  decisionRequestBody,
  historyListSchema,
  historyQuery,
  idParams,
  pendingListSchema,
  pendingQuery,
  waitQuery,
} from './approvals.schemas.js';
import type { ApprovalCore } from './core.js';
import { AppError } from '../core/errors.js';
import type { ApprovalStatus } from './approval.js';

export interface ApprovalsRoutesDeps {
  approvals: ApprovalCore;
  rbacEnabled: boolean;
  callerAuth: MiddlewareHandler<AppEnv>;
  /** Counts a decision request against the caller's rate limit, as a tool call. */
  toolCallLimit: MiddlewareHandler<AppEnv>;
}

const approvalAnswer = { description: 'the approval request', content: json(approvalEnvelopeSchema) };

export function approvalsRoutes(deps: ApprovalsRoutesDeps) {
  const { approvals } = deps;
  const app = openApiApp();
  const ctx = (c: { get(k: 'requestId'): string }) => ({ httpRequestId: c.get('requestId') });
  const approver = (permission: typeof APPROVAL_VIEW | typeof APPROVAL_MANAGE): MiddlewareHandler<AppEnv> =>
    function requireApproverMiddleware(c, next) {
      approvals.views.requireApprover(c.get('principal'), permission);
      return next();
    };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/approvals',
      tags: ['tool callers'],
      summary: 'Ask for a decision only (the caller runs the tool itself)',
      ...access('tool caller'),
      middleware: [deps.callerAuth, deps.toolCallLimit, requireToolCaller(deps.rbacEnabled), jsonBody()] as const,
      request: { body: { required: true, content: json(decisionRequestBody) } },
      responses: { 202: { description: 'created; `Location` is where to poll it', content: json(approvalEnvelopeSchema) }, ...errors(400, 401, 403, 404, 413, 415, 429) },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const approval = await approvals.gate.requestDecision(toolCaller(c, deps.rbacEnabled), body.tool, body.arguments, ctx(c));
      c.header('Location', `/api/approvals/${approval.id}`);
      return c.json({ approval }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/approvals/pending',
      tags: ['approvers'],
      summary: 'Pending requests, oldest first',
      ...access('approval.view'),
      middleware: [deps.callerAuth, approver(APPROVAL_VIEW)] as const,
      request: { query: pendingQuery },
      responses: { 200: { description: 'pending requests (summaries)', content: json(pendingListSchema) }, ...errors(400, 401, 403) },
    }),
    async (c) => {
      const pending = await approvals.views.listPending(c.req.valid('query').limit);
      return c.json({ pending_approvals: pending, count: pending.length }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/approvals',
      tags: ['approvers'],
      summary: 'Requests of every status, newest first, filtered by status, tool, requester and time',
      ...access('approval.view'),
      middleware: [deps.callerAuth, approver(APPROVAL_VIEW)] as const,
      request: { query: historyQuery },
      responses: { 200: { description: 'requests (summaries)', content: json(historyListSchema) }, ...errors(400, 401, 403) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const list = await approvals.views.history({
        limit: q.limit,
        statuses: q.status?.split(',') as ApprovalStatus[] | undefined,
        tool: q.tool,
        requesterId: q.requester,
        since: q.since ? Date.parse(q.since) : undefined,
        before: q.before ? Date.parse(q.before) : undefined,
      });
      return c.json({ approvals: list, count: list.length }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/approvals/{id}',
      tags: ['tool callers'],
      summary: 'One request, for its requester or an approver; `?wait=SECONDS` long-polls until it is settled',
      ...access('tool caller'),
      middleware: [deps.callerAuth, requireAuthenticated] as const,
      request: { params: idParams, query: waitQuery },
      responses: { 200: approvalAnswer, ...errors(400, 401, 404, 409) },
    }),
    async (c) => {
      const approval = await approvals.views.get(authenticated(c), c.req.param('id'));
      const { wait } = c.req.valid('query');
      if (!wait) return c.json({ approval }, 200);
      const polled = await approvals.waiters.untilSettled(approval.id, wait * 1000, c.req.raw.signal);
      // Shutdown answers a long-poll at once (503, with the request as it is) instead of holding the stop.
      if (polled.kind === 'shutting-down') throw new AppError('shutting_down', 'the gateway is shutting down; ask another instance or retry', { approval: polled.approval });
      return c.json({ approval: polled.approval }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/approvals/{id}',
      tags: ['tool callers'],
      summary: 'The requester cancels a pending request',
      ...access('tool caller'),
      middleware: [deps.callerAuth, requireAuthenticated] as const,
      request: { params: idParams },
      responses: { 200: approvalAnswer, ...errors(401, 403, 404, 409) },
    }),
    async (c) => c.json({ approval: await approvals.requests.cancelByRequester(authenticated(c), c.req.param('id'), ctx(c)) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/approvals/{id}/approve',
      tags: ['approvers'],
      summary: 'Approve a pending request (quorum may need more approvals), optionally with a standing approval',
      ...access('approval.manage'),
      middleware: [deps.callerAuth, approver(APPROVAL_MANAGE), jsonBody()] as const,
      request: { params: idParams, body: { required: true, content: json(approveBody) } },
      responses: { 200: { description: 'the approval, and the standing approval it made', content: json(approveAnswerSchema) }, ...errors(400, 401, 403, 404, 409, 415) },
    }),
    async (c) => {
      const principal = approvals.views.requireApprover(c.get('principal'), APPROVAL_MANAGE);
      const body = c.req.valid('json');
      const decided = await approvals.requests.decideWith(principal, c.req.param('id'), 'approve', body.reason, ctx(c), { grant: body.grant });
      return c.json(decided, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/approvals/{id}/grant-preview',
      tags: ['approvers'],
      summary: 'What approving this request with a standing approval would allow, checked against the caps; decides nothing',
      description:
        'The same validation and caps as `approve` with `grant` (the same 400 and 403 `grant_not_allowed`), and the terms the grant would have if this approval made it: ' +
        'the bounds asked for or else the caps\u2019, and how each `match` pattern is read. The web console shows it for the approver to confirm.',
      ...access('approval.manage'),
      middleware: [deps.callerAuth, approver(APPROVAL_MANAGE), jsonBody()] as const,
      request: { params: idParams, body: { required: true, content: json(grantPreviewBody) } },
      responses: { 200: { description: 'what the standing approval would allow', content: json(grantPreviewSchema) }, ...errors(400, 401, 403, 404, 409, 415) },
    }),
    async (c) => {
      const principal = approvals.views.requireApprover(c.get('principal'), APPROVAL_MANAGE);
      return c.json({ preview: await approvals.requests.previewGrant(principal, c.req.param('id'), c.req.valid('json').grant) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/approvals/{id}/reject',
      tags: ['approvers'],
      summary: 'Reject a pending request',
      ...access('approval.manage'),
      middleware: [deps.callerAuth, approver(APPROVAL_MANAGE), jsonBody()] as const,
      request: { params: idParams, body: { required: true, content: json(decideBody) } },
      responses: { 200: approvalAnswer, ...errors(400, 401, 403, 404, 409, 415) },
    }),
    async (c) => {
      const principal = approvals.views.requireApprover(c.get('principal'), APPROVAL_MANAGE);
      return c.json({ approval: await approvals.requests.decide(principal, c.req.param('id'), 'reject', c.req.valid('json').reason, ctx(c)) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/grants',
      tags: ['approvers'],
      summary: 'Standing approvals, newest first (`all=true`: revoked, expired and used-up ones too)',
      ...access('approval.view'),
      middleware: [deps.callerAuth, approver(APPROVAL_VIEW)] as const,
      request: { query: grantsQuery },
      responses: { 200: { description: 'standing approvals', content: json(grantListSchema) }, ...errors(400, 401, 403) },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const grants = await approvals.requests.listGrants(authenticated(c), { all: query.all === 'true', limit: query.limit });
      return c.json({ grants, count: grants.length }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/grants/{id}/revoke',
      tags: ['approvers'],
      summary: 'Revoke a standing approval at once',
      ...access('approval.manage'),
      middleware: [deps.callerAuth, approver(APPROVAL_MANAGE), jsonBody()] as const,
      request: { params: idParams, body: { required: true, content: json(decideBody) } },
      responses: { 200: { description: 'the revoked standing approval', content: json(grantEnvelopeSchema) }, ...errors(400, 401, 403, 404, 409, 415) },
    }),
    async (c) => {
      const principal = approvals.views.requireApprover(c.get('principal'), APPROVAL_MANAGE);
      return c.json({ grant: await approvals.requests.revokeGrant(principal, c.req.param('id'), c.req.valid('json').reason, ctx(c)) }, 200);
    },
  );

  return app;
}
