import { randomUUID } from 'node:crypto';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { toolCaller } from '../http/auth.middleware.js';
import { access, errors, openApiApp } from '../http/openapi-routes.js';
import type { AppEnv } from '../http/context.js';
import { AppError } from '../core/errors.js';
import { responseClosed } from '../http/request-context.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../http/validation.js';
import type { Principal } from '../policy/policy.service.js';
import type { ToolExecutor } from '../tools/upstreams.js';
import { callerAuthInfo, createMcpServer, type McpServerDeps } from './mcp.server.js';
import { sendingPlainErrors } from './plain-errors.js';

export const MCP_PATH = '/mcp';

export interface McpFrontDoorDeps extends Omit<McpServerDeps, 'progressIntervalMs'> {
  tools: ToolExecutor;
  progressIntervalMs?: number | undefined;
  /** A session with no request and no call in flight for this long is closed. */
  idleTimeoutMs?: number | undefined;
  /** Sessions one caller may hold; opening one more closes their least recently used. */
  maxSessionsPerCaller?: number | undefined;
  /** Spends `n` of the caller's tool-call budget (one per JSON-RPC message), or throws 429. */
  limitToolCalls?: ((c: Context<AppEnv>, principal: Principal, n: number) => Promise<void>) | undefined;
}

interface Session {
  id: string;
  principalId: string;
  transport: WebStandardStreamableHTTPServerTransport;
  server: Server;
  activity: { busy: number };
  lastSeen: number;
}

/**
 * The MCP front door: Streamable HTTP on /mcp, one MCP session per client. Every HTTP request is
 * authenticated afresh by the app's middleware, so a disabled user or a revoked token is refused
 * on the next request, and a session is only ever used by the principal that opened it.
 */
export class McpFrontDoor {
  private readonly sessions = new Map<string, Session>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly idleTimeoutMs: number;
  private readonly maxSessionsPerCaller: number;
  private readonly serverDeps: McpServerDeps;
  private closed = false;

  constructor(private readonly deps: McpFrontDoorDeps) {
    this.idleTimeoutMs = deps.idleTimeoutMs ?? 60 * 60_000;
    this.maxSessionsPerCaller = deps.maxSessionsPerCaller ?? 32;
    this.serverDeps = { ...deps, progressIntervalMs: deps.progressIntervalMs ?? 5000 };
    deps.tools.onToolsChanged(() => this.announceToolsChanged());
    this.sweepTimer = setInterval(() => this.closeIdle(), Math.min(60_000, this.idleTimeoutMs));
    this.sweepTimer.unref();
  }

  /** The sub-app of `/mcp`; `callerAuth` authenticates every request. */
  app(callerAuth: MiddlewareHandler<AppEnv>): OpenAPIHono<AppEnv> {
    const app = openApiApp();
    for (const method of ['post', 'get', 'delete'] as const) {
      app.openAPIRegistry.registerPath({
        method,
        path: MCP_PATH,
        tags: ['tool callers'],
        summary: `MCP front door (Streamable HTTP, ${method.toUpperCase()})`,
        description:
          'An MCP server over Streamable HTTP: `tools/list` shows the caller\u2019s tools, `tools/call` goes through the same gate as ' +
          '`POST /tools/{name}/call` and sends progress notifications while it waits for approval. Bodies are JSON-RPC 2.0.',
        ...access('tool caller'),
        responses: { 200: { description: 'JSON-RPC response or SSE stream' }, ...errors(...(method === 'get' ? [401] : [400, 401, 403, 415, 429])) },
      });
    }
    app.on(['GET', 'POST', 'DELETE'], MCP_PATH, callerAuth, (c) => this.handle(c));
    return app;
  }

  get sessionCount() {
    return this.sessions.size;
  }

  private async handle(c: Context<AppEnv>): Promise<Response> {
    if (this.closed) throw new AppError('shutting_down', 'the gateway is shutting down');
    const principal = toolCaller(c, this.deps.rbacEnabled);
    const sessionId = c.req.header('mcp-session-id');
    const caller = { principal, signal: c.req.raw.signal, httpRequestId: c.get('requestId') };

    if (sessionId !== undefined) {
      const session = this.sessions.get(sessionId);
      if (!session) return jsonRpcError(404, -32001, 'Session not found; initialize a new session');
      if (session.principalId !== principal.id) throw new AppError('forbidden', 'this MCP session belongs to another caller');
      session.lastSeen = this.deps.clock.now();
      const body = await this.readMessages(c, principal);
      if (body instanceof Response) return body;
      return measuredToTheEnd(c, await session.transport.handleRequest(c.req.raw, { authInfo: callerAuthInfo(caller), ...body }));
    }
    if (c.req.method !== 'POST') return jsonRpcError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');

    const body = await this.readMessages(c, principal);
    if (body instanceof Response) return body;
    // A POST without a session may only be `initialize`; the transport says so when it is not.
    const session = this.open(principal);
    const response = await session.transport.handleRequest(c.req.raw, { authInfo: callerAuthInfo(caller), ...body });
    if (session.transport.sessionId === undefined) await session.server.close().catch(() => undefined);
    return measuredToTheEnd(c, response);
  }

  /**
   * Reads a POST's JSON-RPC body here rather than in the transport: its nesting is checked before
   * anything recurses into it, and each message of a batch spends one call of the caller's budget.
   */
  private async readMessages(c: Context<AppEnv>, principal: Principal): Promise<{ parsedBody?: unknown } | Response> {
    // Only a JSON POST has messages; the transport answers anything else as the protocol says.
    if (c.req.method !== 'POST' || !/^application\/json/i.test(c.req.header('content-type') ?? '')) return {};
    const text = await c.req.text();
    if (jsonTooDeep(text)) throw new AppError('invalid_json', `the request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
    let parsedBody: unknown;
    try {
      parsedBody = JSON.parse(text);
    } catch {
      return jsonRpcError(400, -32700, 'Parse error: Invalid JSON');
    }
    await this.deps.limitToolCalls?.(c, principal, Array.isArray(parsedBody) ? Math.max(1, parsedBody.length) : 1);
    return { parsedBody };
  }

  private open(principal: Principal): Session {
    const activity = { busy: 0 };
    const server = createMcpServer(this.serverDeps, activity);
    const session: Session = {
      id: '',
      principalId: principal.id,
      server,
      activity,
      lastSeen: this.deps.clock.now(),
      transport: new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          session.id = id;
          this.sessions.set(id, session);
          this.limitSessionsOf(principal.id);
        },
      }),
    };
    server.onclose = () => {
      if (session.id && this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    };
    // connect() only wires callbacks for this transport; it cannot fail or wait on I/O.
    void server.connect(sendingPlainErrors(session.transport));
    return session;
  }

  private limitSessionsOf(principalId: string) {
    const own = [...this.sessions.values()].filter((s) => s.principalId === principalId);
    if (own.length <= this.maxSessionsPerCaller) return;
    own.sort((a, b) => a.lastSeen - b.lastSeen);
    for (const s of own.slice(0, own.length - this.maxSessionsPerCaller)) this.closeSession(s, 'too many sessions for one caller');
  }

  private closeIdle() {
    const cutoff = this.deps.clock.now() - this.idleTimeoutMs;
    for (const s of this.sessions.values()) if (s.lastSeen < cutoff && s.activity.busy === 0) this.closeSession(s, 'idle');
  }

  private closeSession(session: Session, why: string) {
    this.sessions.delete(session.id);
    this.deps.logger.debug({ session: session.id, why }, 'closing MCP session');
    session.server.close().catch(() => undefined);
  }

  private announceToolsChanged() {
    for (const s of this.sessions.values()) {
      s.server.sendToolListChanged().catch((err: Error) => this.deps.logger.debug({ session: s.id, err: err.message }, 'could not send list_changed'));
    }
  }

  /** Ends every session; waiting calls are answered by the approval service's own shutdown. */
  async close() {
    this.closed = true;
    clearInterval(this.sweepTimer);
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(sessions.map((s) => s.server.close().catch(() => undefined)));
  }
}

/**
 * A call answered as an event stream (one waiting for approval, above all) is over when the stream
 * ends, not when this handler returns: the request log and the metrics wait for that.
 */
function measuredToTheEnd(c: Context<AppEnv>, response: Response): Response {
  if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
    const closed = responseClosed(c);
    if (closed) c.set('settled', closed);
  }
  return response;
}

function jsonRpcError(status: number, code: number, message: string): Response {
  return Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status });
}
