import { createHash } from 'node:crypto';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { Hono, type MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { stylesOnlyCsp } from './security-headers.js';

export const OPENAPI_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';
const TAGS = ['tool callers', 'approvers', 'operators'];

/**
 * The OpenAPI 3.1 document, generated from the routes' own `createRoute` definitions (and the
 * doc-only entries of the WebSocket, MCP and metrics, registered by the modules that serve them).
 */
export function buildOpenApiDocument(app: OpenAPIHono<AppEnv>, options: { version?: string } = {}) {
  const registry = app.openAPIRegistry;
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'an API token from `toolgate users add` or `toolgate users token`' });
  registry.registerComponent('securitySchemes', 'metricsToken', { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, only when it is set' });
  registry.registerPath({ method: 'get', path: OPENAPI_PATH, tags: ['operators'], summary: 'This document', 'x-toolgate-access': 'open', responses: { 200: { description: 'the OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } } });
  registry.registerPath({ method: 'get', path: DOCS_PATH, tags: ['operators'], summary: 'This document as an HTML page', 'x-toolgate-access': 'open', responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } } });
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'toolgate',
      version: options.version ?? '0.1.0',
      description:
        'A human-approval gateway for AI-agent tool calls. Errors are `{"error":{"code","message","requestId"}}` with the code\u2019s extra fields beside `error` (schema `Error`; docs/api.md lists every code); every response carries `X-Request-Id`. ' +
        'Bodies are JSON with `Content-Type: application/json`; state-changing requests from a browser must come from the gateway\u2019s own origin or one in ALLOWED_ORIGINS.',
    },
    tags: TAGS.map((name) => ({ name })),
  });
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;

/** `/api/approvals/:id` → `/api/approvals/{id}` (a Hono `:id{regex}` drops its regex). */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, '{$1}');
}

/** The docs page's only active content; its hash is what the page's Content-Security-Policy allows. */
export const DOCS_STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.5rem;overflow:auto}
section{border-top:1px solid #ddd;padding:.25rem 0}.m{display:inline-block;min-width:4rem;color:#fff;border-radius:3px;text-align:center;font-size:13px}
.get{background:#2a7}.post{background:#27c}.delete{background:#c33}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}`;

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

interface DocOperation {
  tags?: string[];
  summary?: string;
  description?: string;
  'x-toolgate-access'?: string;
  parameters?: { name: string; in: string; required?: boolean; schema?: unknown; description?: string }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string } }> }>;
}

/** A self-contained page rendered from the document (no scripts, no CDN: gateways often run where nothing can be fetched). */
export function renderDocsPage(doc: OpenApiDocument): string {
  const operations = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
    Object.entries(item as Record<string, DocOperation>).map(([method, op]) => ({ path, method, op })),
  );
  const sections = TAGS.map((tag) => {
    const ops = operations
      .filter(({ op }) => op.tags?.includes(tag))
      .map(({ path, method, op }) => {
        const params = op.parameters?.length
          ? `<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>${op.parameters
              .map((p) => `<tr><td><code>${escape(p.name)}</code>${p.required ? ' *' : ''}</td><td>${p.in}</td><td><code>${escape(p.description ?? JSON.stringify(p.schema))}</code></td></tr>`)
              .join('')}</table>`
          : '';
        const bodySchema = op.requestBody?.content['application/json']?.schema;
        const body = bodySchema ? `<p>Body (JSON):</p><pre>${escape(JSON.stringify(bodySchema, null, 2))}</pre>` : '';
        const responses = Object.entries(op.responses ?? {})
          .map(([status, r]) => {
            const ref = Object.values(r.content ?? {})[0]?.schema?.$ref?.split('/').pop();
            return `<li><b>${status}</b> ${escape(r.description ?? '')}${ref ? ` — <a href="#schema-${ref}">${ref}</a>` : ''}</li>`;
          })
          .join('');
        const id = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, '-');
        return `<section id="${id}"><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escape(path)}</code></h3>
<p>${escape(op.summary ?? '')}. <i>Access: ${escape(op['x-toolgate-access'] ?? 'open')}</i></p>${op.description ? `<p>${escape(op.description)}</p>` : ''}${params}${body}<ul>${responses}</ul></section>`;
      })
      .join('\n');
    return `<h2>${escape(tag)}</h2>\n${ops}`;
  });
  const schemas = Object.entries(doc.components?.schemas ?? {})
    .map(([name, schema]) => `<section id="schema-${name}"><h3>${name}</h3><pre>${escape(JSON.stringify(schema, null, 2))}</pre></section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>toolgate API</title><meta name="viewport" content="width=device-width">
<style>${DOCS_STYLE}</style>
</head><body><h1>toolgate API ${escape(doc.info.version)}</h1><p>${escape(doc.info.description ?? '')}</p>
<p>Machine-readable: <a href="${OPENAPI_PATH}">${OPENAPI_PATH}</a> (OpenAPI ${doc.openapi}).</p>
${sections.join('\n')}
<h2>schemas</h2>
${schemas}
</body></html>`;
}

/** GET /openapi.json and GET /docs, built once from every route `app` has when called: mount this last. */
export function docsRoutes(app: OpenAPIHono<AppEnv>, options: { version?: string; callerAuth: MiddlewareHandler<AppEnv> }) {
  const doc = buildOpenApiDocument(app, options);
  const json = JSON.stringify(doc);
  const html = renderDocsPage(doc);
  const csp = stylesOnlyCsp([createHash('sha256').update(DOCS_STYLE).digest('base64')]);
  const docs = new Hono<AppEnv>();
  docs.get(OPENAPI_PATH, options.callerAuth, (c) => c.body(json, 200, { 'content-type': 'application/json; charset=utf-8' }));
  docs.get(DOCS_PATH, options.callerAuth, (c) => c.html(html, 200, { 'content-security-policy': csp }));
  return docs;
}
