import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApprovalMetrics } from '../approvals/core.js';
import { hashToken, sameHash } from '../auth/tokens.js';
import type { AppEnv } from '../http/context.js';
import { answeredStatus, quietLog, type RequestObserver } from '../http/request-context.js';
import { AppError } from '../core/errors.js';
import { access, errors, openApiApp } from '../http/openapi-routes.js';

export const METRICS_PATH = '/metrics';

export interface MetricsDeps {
  /** Read at scrape time, so the gauges cost nothing between scrapes. */
  pendingRequests: () => Promise<number>;
  approversOnline: () => number;
  /** When set, scrapes must send `Authorization: Bearer <token>`; otherwise /metrics is open. */
  token?: string | undefined;
  /** Node process metrics (memory, event loop lag, GC); off in tests that start many gateways. */
  processMetrics?: boolean;
}

export interface GatewayMetrics {
  registry: Registry;
  /** Passed to the approval core: decisions, expiries, cancellations, upstream calls. */
  approvals: ApprovalMetrics;
  /** Passed to createAuditLog as `onAppend`. */
  auditAppended: () => void;
  /** Counts a finished HTTP request by method, route pattern and status. */
  recordRequest: RequestObserver;
  /** Mounts GET /metrics. */
  /** The sub-app of `GET /metrics` (its own bearer check: METRICS_TOKEN, not a user's token). */
  app(): OpenAPIHono<AppEnv>;
}

const SECONDS = 1000;

/**
 * The gateway's Prometheus metrics, on a registry of its own: several gateways in one process
 * (tests, benchmarks) must not share counters, and prom-client's global registry would refuse
 * the second registration of a name.
 */
export function createMetrics(deps: MetricsDeps): GatewayMetrics {
  const registry = new Registry();
  if (deps.processMetrics) collectDefaultMetrics({ register: registry });

  const httpRequests = new Counter({
    name: 'toolgate_http_requests_total',
    help: 'HTTP requests answered, by method, matched route pattern and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'toolgate_http_request_duration_seconds',
    help: 'HTTP request duration (a HIGH tool call includes the wait for its approval)',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600],
    registers: [registry],
  });
  new Gauge({
    name: 'toolgate_pending_requests',
    help: 'Approval requests pending now (read from the database at scrape time)',
    registers: [registry],
    async collect() {
      this.set(await deps.pendingRequests());
    },
  });
  new Gauge({
    name: 'toolgate_approvers_online',
    help: 'Approvers with an authenticated WebSocket open to this gateway',
    registers: [registry],
    collect() {
      this.set(deps.approversOnline());
    },
  });
  const decisions = new Counter({
    name: 'toolgate_decisions_total',
    help: 'Approval requests resolved by an approver in this gateway, by verdict and sensitivity',
    labelNames: ['verdict', 'sensitivity'] as const,
    registers: [registry],
  });
  const expiries = new Counter({
    name: 'toolgate_expired_total',
    help: 'Approval requests that expired without a decision',
    labelNames: ['sensitivity'] as const,
    registers: [registry],
  });
  const cancellations = new Counter({
    name: 'toolgate_cancelled_total',
    help: 'Approval requests cancelled (caller gone, requester withdrew, gateway restarted)',
    labelNames: ['sensitivity'] as const,
    registers: [registry],
  });
  const timeToDecision = new Histogram({
    name: 'toolgate_decision_wait_seconds',
    help: 'Time from request to resolution, by outcome (approve, reject, expired, cancelled)',
    labelNames: ['outcome', 'sensitivity'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const upstreamCalls = new Counter({
    name: 'toolgate_upstream_calls_total',
    help: 'Tool calls sent upstream, by tool and outcome (ok, tool_error, error)',
    labelNames: ['tool', 'outcome'] as const,
    registers: [registry],
  });
  const upstreamDuration = new Histogram({
    name: 'toolgate_upstream_call_duration_seconds',
    help: 'Latency of upstream tool calls',
    labelNames: ['tool'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const auditEvents = new Counter({
    name: 'toolgate_audit_events_total',
    help: 'Audit events written by this gateway',
    registers: [registry],
  });

  const expectedHash = deps.token ? hashToken(deps.token) : null;

  return {
    registry,
    approvals: {
      decided(verdict, sensitivity, waitedMs) {
        if (verdict === 'expired') expiries.inc({ sensitivity });
        else if (verdict === 'cancelled') cancellations.inc({ sensitivity });
        else decisions.inc({ verdict, sensitivity });
        timeToDecision.observe({ outcome: verdict, sensitivity }, waitedMs / SECONDS);
      },
      upstreamCall(tool, outcome, ms) {
        upstreamCalls.inc({ tool, outcome });
        upstreamDuration.observe({ tool }, ms / SECONDS);
      },
    },
    auditAppended: () => auditEvents.inc(),
    recordRequest(c, durationMs) {
      const route = routeLabel(c);
      httpRequests.inc({ method: c.req.method, route, status: answeredStatus(c) });
      httpDuration.observe({ method: c.req.method, route }, durationMs / SECONDS);
    },
    app() {
      const app = openApiApp();
      app.openAPIRegistry.registerPath({
        method: 'get',
        path: METRICS_PATH,
        tags: ['operators'],
        summary: 'Prometheus metrics (text exposition format)',
        description: 'Open unless METRICS_TOKEN is set; then `Authorization: Bearer $METRICS_TOKEN` is required.',
        ...access('metrics'),
        responses: { 200: { description: 'metrics', content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } } }, ...errors(401) },
      });
      app.get(METRICS_PATH, quietLog, async (c) => {
        if (expectedHash) {
          const given = /^Bearer[ ]+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
          if (!given || !sameHash(hashToken(given), expectedHash)) {
            throw new AppError('unauthorized', 'metrics need the METRICS_TOKEN as a bearer token');
          }
        }
        return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
      });
      return app;
    },
  };
}

/**
 * The route pattern that answered (`/api/approvals/:id`), never the raw path: raw paths
 * carry ids and would give Prometheus a new series per request. Middleware is registered as
 * ALL on a wildcard, so the first match that is not one is the route; none means 404.
 */
export function routeLabel(c: Context): string {
  for (const route of matchedRoutes(c)) {
    if (route.method === 'ALL' && route.path.endsWith('*')) continue;
    return route.path;
  }
  return 'unmatched';
}
