import { createHash } from 'node:crypto';
import type { Hono } from 'hono';
import { z } from 'zod';
import { decideBody, decisionRequestBody, pendingQuery, waitQuery } from '../approvals/approvals.routes.js';
import { auditQuery } from '../audit/audit.routes.js';
import { toolCallBody } from '../tools/tools.routes.js';
import type { AppEnv } from './context.js';
import { stylesOnlyCsp } from './security-headers.js';

/** Who may call an operation; rendered as its security requirement and in the docs page. */
type Access = 'open' | 'tool caller' | 'approval.view' | 'approval.manage' | 'admin' | 'metrics';

interface Operation {
  method: 'get' | 'post' | 'delete';
  /** Hono's pattern (`/api/approvals/:id`); turned into OpenAPI's `{id}` here. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  /** The zod schemas the route validates with, so the document cannot drift from the code. */
  query?: z.ZodType;
  body?: z.ZodType;
  headers?: { name: string; description: string }[];
  responses: Record<string, { description: string; schema?: string; contentType?: string }>;
}

const approvalResponse = { description: 'the approval request', schema: 'ApprovalEnvelope' };
const errors = (...codes: string[]) =>
  Object.fromEntries(codes.map((code) => [code, { description: ERROR_TEXT[code] ?? 'error', schema: 'Error' }]));
const ERROR_TEXT: Record<string, string> = {
  '400': 'bad body or query (validation_failed, invalid_json)',
  '401': 'no, bad or revoked token (unauthorized, user_disabled)',
  '403': 'the role may not do this (permission_denied, self_approval), the request was rejected (approval_rejected), it was approved but its requester was disabled or its token revoked before it ran (access_revoked), or a browser sent it from a foreign origin (forbidden_origin)',
  '404': 'not found (not_found, unknown_tool)',
  '408': 'the request expired without a decision (approval_expired)',
  '409': 'not pending, ambiguous id, already decided, or cancelled',
  '413': 'body too large (payload_too_large)',
  '415': 'a body without `Content-Type: application/json` (unsupported_media_type)',
  '429': 'too many pending requests, in all or from this requester (too_many_pending), or rate limited (rate_limited)',
  '502': 'the upstream MCP server failed (upstream_error)',
  '503': 'the gateway is shutting down (shutting_down)',
};

/** Every route the gateway serves. test/operations.test.ts fails when a registered route is missing here. */
export const OPERATIONS: Operation[] = [
  {
    method: 'get',
    path: '/health',
    tag: 'operators',
    summary: 'Liveness and readiness',
    access: 'open',
    responses: { '200': { description: 'healthy', schema: 'Health' }, '503': { description: 'database unreachable', schema: 'Health' } },
  },
  {
    method: 'get',
    path: '/metrics',
    tag: 'operators',
    summary: 'Prometheus metrics (text exposition format)',
    description: 'Open unless METRICS_TOKEN is set; then `Authorization: Bearer $METRICS_TOKEN` is required.',
    access: 'metrics',
    responses: { '200': { description: 'metrics', contentType: 'text/plain; version=0.0.4' }, ...errors('401') },
  },
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'operators',
    summary: 'This document',
    access: 'open',
    responses: { '200': { description: 'the OpenAPI 3.1 document' } },
  },
  {
    method: 'get',
    path: '/docs',
    tag: 'operators',
    summary: 'This document as an HTML page',
    access: 'open',
    responses: { '200': { description: 'HTML', contentType: 'text/html' } },
  },
  {
    method: 'get',
    path: '/tools',
    tag: 'tool callers',
    summary: 'The tools this caller may call, with sensitivity and input schema',
    access: 'tool caller',
    responses: { '200': { description: 'tools', schema: 'ToolList' }, ...errors('401') },
  },
  {
    method: 'post',
    path: '/tools/:name/call',
    tag: 'tool callers',
    summary: 'Call a tool through the gate',
    description:
      'LOW/MEDIUM tools (or any tool with APPROVAL_WORKFLOW_ENABLED=false) run at once. HIGH/CRITICAL tools wait for the decision; ' +
      'with `Prefer: respond-async` the answer is 202 with the approval and a Location to poll.',
    access: 'tool caller',
    body: toolCallBody,
    headers: [{ name: 'Prefer', description: '`respond-async`: answer 202 at once instead of waiting for the decision' }],
    responses: {
      '200': { description: 'the tool ran; `result` is the MCP CallToolResult (and `approval` when it needed one)', schema: 'ToolCallResult' },
      '202': { description: 'accepted for approval (Prefer: respond-async)', schema: 'ApprovalEnvelope' },
      ...errors('400', '401', '403', '404', '408', '409', '413', '415', '429', '502', '503'),
    },
  },
  {
    method: 'post',
    path: '/api/approvals',
    tag: 'tool callers',
    summary: 'Ask for a decision only (the caller runs the tool itself)',
    access: 'tool caller',
    body: decisionRequestBody,
    responses: { '202': { description: 'created', schema: 'ApprovalEnvelope' }, ...errors('400', '401', '403', '404', '413', '415', '429') },
  },
  {
    method: 'get',
    path: '/api/approvals/pending',
    tag: 'approvers',
    summary: 'Pending requests, oldest first',
    access: 'approval.view',
    query: pendingQuery,
    responses: { '200': { description: 'pending requests', schema: 'PendingList' }, ...errors('400', '401', '403') },
  },
  {
    method: 'get',
    path: '/api/approvals/:id',
    tag: 'tool callers',
    summary: 'One request, for its requester or an approver; `?wait=SECONDS` long-polls until it is settled',
    description: '`id` is the full id or a unique prefix of at least 8 characters.',
    access: 'tool caller',
    query: waitQuery,
    responses: { '200': approvalResponse, ...errors('400', '401', '404', '409') },
  },
  {
    method: 'delete',
    path: '/api/approvals/:id',
    tag: 'tool callers',
    summary: 'The requester cancels a pending request',
    access: 'tool caller',
    responses: { '200': approvalResponse, ...errors('401', '403', '404', '409') },
  },
  {
    method: 'post',
    path: '/api/approvals/:id/approve',
    tag: 'approvers',
    summary: 'Approve a pending request (quorum may need more approvals)',
    access: 'approval.manage',
    body: decideBody,
    responses: { '200': approvalResponse, ...errors('400', '401', '403', '404', '409', '415') },
  },
  {
    method: 'post',
    path: '/api/approvals/:id/reject',
    tag: 'approvers',
    summary: 'Reject a pending request',
    access: 'approval.manage',
    body: decideBody,
    responses: { '200': approvalResponse, ...errors('400', '401', '403', '404', '409', '415') },
  },
  {
    method: 'get',
    path: '/security/logs/audit',
    tag: 'operators',
    summary: 'Audit events, newest first (admins only)',
    description: '`before` pages backwards: pass the smallest `seq` of the previous page.',
    access: 'admin',
    query: auditQuery,
    responses: { '200': { description: 'events', schema: 'AuditPage' }, ...errors('400', '401', '403') },
  },
  {
    method: 'get',
    path: '/ws/approvals',
    tag: 'approvers',
    summary: 'The approvers\u2019 live WebSocket',
    description:
      'Upgrade with `Authorization: Bearer <token>` (or send `{"type":"auth","token"}` within 5 s). Server frames: `hello`, ' +
      '`approval.requested`, `approval.resolved`, `approval.updated`, `pending`, `decide.ok`, `error`. Client frames: ' +
      '`{"type":"decide","ref","id","decision":"approve"|"reject","reason"}`, `{"type":"list","ref","limit"}`. ' +
      'Closes 4401 without valid credentials and 4403 without approval.view. A browser upgrade from a foreign `Origin` gets 403 ' +
      '(forbidden_origin). See docs/api.md.',
    access: 'approval.view',
    responses: { '101': { description: 'switching protocols to WebSocket' }, '404': { description: 'not a WebSocket upgrade (no such route)' }, ...errors('403', '429') },
  },
  ...(['post', 'get', 'delete'] as const).map(
    (method): Operation => ({
      method,
      path: '/mcp',
      tag: 'tool callers',
      summary: `MCP front door (Streamable HTTP, ${method.toUpperCase()})`,
      description:
        'An MCP server over Streamable HTTP: `tools/list` shows the caller\u2019s tools, `tools/call` goes through the same gate as ' +
        '`POST /tools/{name}/call` and sends progress notifications while it waits for approval. Bodies are JSON-RPC 2.0.',
      access: 'tool caller',
      responses: { '200': { description: 'JSON-RPC response or SSE stream' }, ...errors(...(method === 'get' ? ['401'] : ['400', '401', '403', '415', '429'])) },
    }),
  ),
];

const approvalSchema = {
  type: 'object',
  required: ['id', 'shortId', 'tool', 'sensitivity', 'arguments', 'requester', 'mode', 'status', 'requestedAt', 'expiresAt', 'decisions', 'requiredApprovals', 'execution'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    shortId: { type: 'string', description: 'first 8 hex characters of the id' },
    tool: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$' },
    sensitivity: { enum: ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] },
    arguments: { type: 'object' },
    requester: { type: 'object', properties: { id: { type: 'string' }, role: { type: 'string' } } },
    mode: { enum: ['wait', 'async', 'decision'] },
    status: { enum: ['pending', 'approved', 'rejected', 'expired', 'cancelled'] },
    statusReason: { type: ['string', 'null'] },
    requestedAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time' },
    decidedAt: { type: ['string', 'null'], format: 'date-time' },
    decisions: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          approver: { type: 'string' },
          verdict: { enum: ['approve', 'reject'] },
          reason: { type: 'string' },
          at: { type: 'string', format: 'date-time' },
          withdrawn: { type: 'boolean', description: "on a pending request: the approver was since disabled or lost approval.manage, so this approval no longer counts" },
        },
      },
    },
    requiredApprovals: { type: 'integer' },
    execution: {
      type: 'object',
      properties: {
        status: { enum: ['none', 'pending', 'running', 'succeeded', 'failed', 'interrupted'] },
        startedAt: { type: ['string', 'null'], format: 'date-time' },
        finishedAt: { type: ['string', 'null'], format: 'date-time' },
      },
    },
    result: { description: 'the MCP CallToolResult once the gateway ran the tool' },
  },
};

const componentSchemas: Record<string, unknown> = {
  Approval: approvalSchema,
  ApprovalEnvelope: { type: 'object', required: ['approval'], properties: { approval: { $ref: '#/components/schemas/Approval' } } },
  PendingList: {
    type: 'object',
    properties: { pending_approvals: { type: 'array', items: { $ref: '#/components/schemas/ApprovalSummary' } }, count: { type: 'integer' } },
  },
  ApprovalSummary: {
    description: 'An approval as lists and pushed frames carry it: arguments over 2 KiB are a shortened preview; GET /api/approvals/{id} has them whole.',
    allOf: [
      { $ref: '#/components/schemas/Approval' },
      {
        type: 'object',
        required: ['argumentsBytes', 'argumentsTruncated'],
        properties: {
          arguments: { description: 'the arguments, or a preview of them (each long string keeps its head and tail) when argumentsTruncated' },
          argumentsBytes: { type: 'integer', description: 'size of the whole arguments JSON in UTF-8 bytes' },
          argumentsTruncated: { type: 'boolean' },
        },
      },
    ],
  },
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' } } },
      approval: { $ref: '#/components/schemas/Approval' },
    },
  },
  Health: {
    type: 'object',
    properties: {
      status: { enum: ['ok', 'degraded'] },
      approval_workflow: { type: 'boolean' },
      rbac: { type: 'boolean' },
      pending: { type: ['integer', 'null'] },
      approvers_online: { type: 'integer' },
      db: { enum: ['ok', 'error'] },
    },
  },
  ToolList: {
    type: 'object',
    properties: {
      tools: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            description: { type: 'string' },
            sensitivity: { enum: ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] },
            requiresApproval: { type: 'boolean' },
            inputSchema: { type: 'object' },
          },
        },
      },
      count: { type: 'integer' },
    },
  },
  ToolCallResult: {
    type: 'object',
    properties: { result: { type: 'object', description: 'MCP CallToolResult: content[], isError?' }, approval: { $ref: '#/components/schemas/Approval' } },
  },
  AuditPage: {
    type: 'object',
    properties: {
      events: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            seq: { type: 'integer' },
            at: { type: 'string', format: 'date-time' },
            actor: { type: 'string' },
            action: { type: 'string' },
            tool: { type: ['string', 'null'] },
            requestId: { type: ['string', 'null'] },
            status: { type: ['string', 'null'] },
            durationMs: { type: ['integer', 'null'] },
            details: { type: 'object' },
            httpRequestId: { type: ['string', 'null'], description: 'the X-Request-Id of the HTTP request that caused the event' },
            prevHash: { type: 'string' },
            hash: { type: 'string' },
          },
        },
      },
      count: { type: 'integer' },
    },
  },
};

/** `/api/approvals/:id` → `/api/approvals/{id}` (a Hono `:id{regex}` drops its regex). */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, '{$1}');
}

/** The request schemas as the client sends them (before defaults and coercion). */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function security(access: Access) {
  if (access === 'open') return [];
  if (access === 'metrics') return [{}, { metricsToken: [] }];
  return [{ bearer: [] }];
}

function parameters(op: Operation) {
  const params: Record<string, unknown>[] = [];
  for (const name of op.path.match(/:([A-Za-z0-9_]+)/g) ?? []) {
    params.push({ name: name.slice(1), in: 'path', required: true, schema: { type: 'string' } });
  }
  if (op.query) {
    const schema = jsonSchema(op.query) as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, prop] of Object.entries(schema.properties ?? {})) {
      params.push({ name, in: 'query', required: schema.required?.includes(name) ?? false, schema: prop });
    }
  }
  for (const h of op.headers ?? []) params.push({ name: h.name, in: 'header', required: false, description: h.description, schema: { type: 'string' } });
  return params;
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;

export function buildOpenApiDocument(options: { version?: string } = {}) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const path = openApiPath(op.path);
    paths[path] ??= {};
    paths[path][op.method] = {
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      'x-toolgate-access': op.access,
      security: security(op.access),
      parameters: parameters(op),
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(op.body) } } } } : {}),
      responses: Object.fromEntries(
        Object.entries(op.responses).map(([status, r]) => [
          status,
          {
            description: r.description,
            ...(r.schema ? { content: { 'application/json': { schema: { $ref: `#/components/schemas/${r.schema}` } } } } : {}),
            ...(r.contentType ? { content: { [r.contentType]: {} } } : {}),
          },
        ]),
      ),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'toolgate',
      version: options.version ?? '0.1.0',
      description:
        'A human-approval gateway for AI-agent tool calls. Errors are `{"error":{"code","message","requestId"}}`; every response carries `X-Request-Id`. ' +
        'Bodies are JSON with `Content-Type: application/json`; state-changing requests from a browser must come from the gateway\u2019s own origin or one in ALLOWED_ORIGINS.',
    },
    tags: [{ name: 'tool callers' }, { name: 'approvers' }, { name: 'operators' }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token from `toolgate users add` or `toolgate users token`' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, only when it is set' },
      },
      schemas: componentSchemas,
    },
  };
}

/** The docs page's only active content; its hash is what the page's Content-Security-Policy allows. */
export const DOCS_STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.5rem;overflow:auto}
section{border-top:1px solid #ddd;padding:.25rem 0}.m{display:inline-block;min-width:4rem;color:#fff;border-radius:3px;text-align:center;font-size:13px}
.get{background:#2a7}.post{background:#27c}.delete{background:#c33}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}`;

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A self-contained page (no scripts, no CDN: gateways often run where nothing can be fetched). */
export function renderDocsPage(doc: OpenApiDocument): string {
  const sections = doc.tags.map(({ name }) => {
    const ops = OPERATIONS.filter((op) => op.tag === name)
      .map((op) => {
        const entry = doc.paths[openApiPath(op.path)]![op.method] as { parameters: { name: string; in: string; required: boolean; schema?: unknown; description?: string }[]; requestBody?: { content: Record<string, { schema: unknown }> } };
        const params = entry.parameters.length
          ? `<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>${entry.parameters
              .map((p) => `<tr><td><code>${escape(p.name)}</code>${p.required ? ' *' : ''}</td><td>${p.in}</td><td><code>${escape(p.description ?? JSON.stringify(p.schema))}</code></td></tr>`)
              .join('')}</table>`
          : '';
        const body = entry.requestBody ? `<p>Body (JSON):</p><pre>${escape(JSON.stringify(entry.requestBody.content['application/json']!.schema, null, 2))}</pre>` : '';
        const responses = Object.entries(op.responses)
          .map(([status, r]) => `<li><b>${status}</b> ${escape(r.description)}${r.schema ? ` — <a href="#schema-${r.schema}">${r.schema}</a>` : ''}</li>`)
          .join('');
        const id = `${op.method}-${op.path}`.replace(/[^A-Za-z0-9]+/g, '-');
        return `<section id="${id}"><h3><span class="m ${op.method}">${op.method.toUpperCase()}</span> <code>${escape(openApiPath(op.path))}</code></h3>
<p>${escape(op.summary)}. <i>Access: ${escape(op.access)}</i></p>${op.description ? `<p>${escape(op.description)}</p>` : ''}${params}${body}<ul>${responses}</ul></section>`;
      })
      .join('\n');
    return `<h2>${escape(name)}</h2>\n${ops}`;
  });
  const schemas = Object.entries(doc.components.schemas)
    .map(([name, schema]) => `<section id="schema-${name}"><h3>${name}</h3><pre>${escape(JSON.stringify(schema, null, 2))}</pre></section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>toolgate API</title><meta name="viewport" content="width=device-width">
<style>${DOCS_STYLE}</style>
</head><body><h1>toolgate API ${escape(doc.info.version)}</h1><p>${escape(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${doc.openapi}).</p>
${sections.join('\n')}
<h2>schemas</h2>
${schemas}
</body></html>`;
}

/** Mounts GET /openapi.json and GET /docs; both are built once, at mount. */
export function docsRoutes(app: Hono<AppEnv>, options: { version?: string } = {}) {
  const doc = buildOpenApiDocument(options);
  const json = JSON.stringify(doc);
  const html = renderDocsPage(doc);
  const csp = stylesOnlyCsp([createHash('sha256').update(DOCS_STYLE).digest('base64')]);
  app.get('/openapi.json', (c) => c.body(json, 200, { 'content-type': 'application/json; charset=utf-8' }));
  app.get('/docs', (c) => c.html(html, 200, { 'content-security-policy': csp }));
}
