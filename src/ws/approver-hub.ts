import type { IncomingMessage } from 'node:http';
import { upgradeWebSocket } from '@hono/node-server';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { WSContext } from 'hono/ws';
import type { WebSocket } from 'ws';
import type { ApprovalCore } from '../approvals/core.js';
import type { AuthService, Credentials } from '../auth/auth.service.js';
import type { ApprovalBus, ApprovalEvent } from '../events/bus.js';
import type { AppEnv } from '../http/context.js';
import { AppError, type ErrorCode } from '../core/errors.js';
import { wsError, wsErrorOf } from './errors.js';
import {
  clientFrame,
  CLOSE_FORBIDDEN,
  CLOSE_GOING_AWAY,
  CLOSE_UNAUTHORIZED,
  encodeServerFrame,
  MAX_FRAME_BYTES,
  WS_PATH,
  type ServerFrame,
} from './protocol.js';
import { access, errors, openApiApp } from '../http/openapi-routes.js';
import { clientAddress } from '../http/rate-limit.js';
import { fromGatewayOrigin } from '../http/browser-guard.js';
import { sessionSecretOf } from '../http/session-cookie.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../http/validation.js';
import type { Logger } from '../logger.js';
import { APPROVAL_VIEW, type PolicyService, type Principal } from '../policy/policy.service.js';

export { WS_PATH, CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_GOING_AWAY, MAX_FRAME_BYTES };
/** Unsent bytes a slow approver socket may hold before it is closed. */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

interface Session {
  ws: WSContext<WebSocket>;
  principal: Principal | null;
  credentials: Credentials | null;
  alive: boolean;
  authTimer: NodeJS.Timeout | null;
  address: string;
  /** Ends the upgrade's HTTP exchange for the request log and metrics: once logged in, or gone. */
  settle?: ((principal?: Principal) => void) | undefined;
  /** Frames from the client, handled one after another in the order they came. */
  inbox: Promise<void>;
  /** Pushes held back while `hello` is being made, so that it always comes first. */
  held: string[] | null;
}

export interface ApproverHubDeps {
  approvals: ApprovalCore;
  auth: AuthService;
  policy: PolicyService;
  bus: ApprovalBus;
  logger: Logger;
  trustUserHeader: boolean;
  /** Proxy hops whose X-Forwarded-For entries are trusted for the client address (TRUST_PROXY). */
  trustProxy?: number;
  /** PUBLIC_URL: its origin is the gateway's own, from which the console's session cookie is accepted. */
  publicUrl?: string | undefined;
  pingIntervalMs?: number;
  authTimeoutMs?: number;
  /** Called with the client address when a socket's credentials are refused (the failed-auth limit). */
  onAuthFailure?: (address: string) => void;
}

/**
 * The approvers' live channel. Every bus event is serialized once and written to every
 * authenticated socket; decisions arrive as `decide` frames and go through the same
 * Requests.decide as the HTTP API.
 */
export class ApproverHub {
  private readonly sessions = new Set<Session>();
  private readonly pingTimer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(private readonly deps: ApproverHubDeps) {
    this.unsubscribe = deps.bus.subscribe((event) => this.broadcast(event));
    this.pingTimer = setInterval(() => this.heartbeat(), deps.pingIntervalMs ?? 15_000);
    this.pingTimer.unref();
  }

  /** Approvers with an authenticated socket open. */
  online(): number {
    let n = 0;
    for (const s of this.sessions) if (s.principal) n++;
    return n;
  }

  connections(): number {
    return this.sessions.size;
  }

  /** The sub-app of `GET /ws/approvals`: it authenticates its sockets itself (4401/4403, not 401). */
  app(): OpenAPIHono<AppEnv> {
    const app = openApiApp();
    app.openAPIRegistry.registerPath({
      method: 'get',
      path: WS_PATH,
      tags: ['approvers'],
      summary: 'The approvers\u2019 live WebSocket',
      description:
        'Upgrade with `Authorization: Bearer <token>` (or send `{"type":"auth","token"}` within 5 s). Server frames: `hello`, ' +
        '`approval.requested`, `approval.resolved`, `approval.updated`, `pending`, `decide.ok`, `error`. Client frames: ' +
        '`{"type":"decide","ref","id","decision":"approve"|"reject","reason"}`, `{"type":"list","ref","limit"}`. ' +
        'Closes 4401 without valid credentials and 4403 without approval.view. A browser upgrade from a foreign `Origin` gets 403 ' +
        '(forbidden_origin). See docs/api.md.',
      ...access('approval.view'),
      responses: { 101: { description: 'switching protocols to WebSocket' }, 404: { description: 'not a WebSocket upgrade (no such route)' }, ...errors(403, 429) },
    });
    app.get(
      WS_PATH,
      upgradeWebSocket((c) => {
        const credentials: Credentials = {
          authorization: c.req.header('authorization'),
          userHeader: this.deps.trustUserHeader ? c.req.header('x-user-id') : undefined,
        };
        // The console's session cookie counts only on an upgrade from the gateway's own pages.
        const cookie = credentials.authorization === undefined ? sessionSecretOf(c) : undefined;
        const cookieRefused = cookie !== undefined && !fromGatewayOrigin(c, this.deps.publicUrl);
        if (cookie !== undefined && !cookieRefused) credentials.session = cookie;
        const session: Session = {
          ws: undefined as never,
          principal: null,
          credentials: null,
          alive: true,
          authTimer: null,
          address: clientAddress(c, this.deps.trustProxy ?? 0),
          inbox: Promise.resolve(),
          held: null,
        };
        // The upgrade is logged (as a 101) once we know who it was: after the login, or when the socket goes.
        const socket = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket;
        if (socket) {
          c.set(
            'settled',
            new Promise<void>((resolve) => {
              session.settle = (principal) => {
                session.settle = undefined;
                if (principal) c.set('principal', principal);
                resolve();
              };
              socket.once('close', () => session.settle?.());
            }),
          );
        }
        return {
          onOpen: (_event, ws) => {
            session.ws = ws as WSContext<WebSocket>;
            this.sessions.add(session);
            ws.raw && (ws.raw as WebSocket).on('pong', () => (session.alive = true));
            if (cookieRefused && !credentials.userHeader) this.refuse(session, CLOSE_FORBIDDEN, "a console session connects only from the gateway's own pages");
            else if (credentials.authorization || credentials.userHeader || credentials.session) this.enqueue(session, () => this.login(session, credentials));
            else {
              session.authTimer = setTimeout(() => this.refuse(session, CLOSE_UNAUTHORIZED, 'authentication timed out'), this.deps.authTimeoutMs ?? 5000);
              session.authTimer.unref();
            }
          },
          onMessage: (event) => this.enqueue(session, () => this.onMessage(session, event.data)),
          onClose: () => this.drop(session),
          onError: () => this.drop(session),
        };
      }),
    );
    return app;
  }

  private enqueue(session: Session, handle: () => Promise<void>) {
    session.inbox = session.inbox.then(handle).catch((err: unknown) => this.deps.logger.error({ err }, 'approver socket frame failed'));
  }

  private async login(session: Session, credentials: Credentials) {
    if (session.authTimer) clearTimeout(session.authTimer);
    session.authTimer = null;
    let principal: Principal | undefined;
    try {
      principal = await this.deps.auth.authenticate(credentials);
    } catch (err) {
      this.deps.onAuthFailure?.(session.address);
      return this.refuse(session, CLOSE_UNAUTHORIZED, (err as Error).message);
    }
    if (!principal) return this.refuse(session, CLOSE_UNAUTHORIZED, 'a token is required');
    if (!this.deps.policy.hasPermission(principal.role, APPROVAL_VIEW)) {
      return this.refuse(session, CLOSE_FORBIDDEN, `role "${principal.role}" lacks ${APPROVAL_VIEW}`);
    }
    if (!this.sessions.has(session)) return;
    session.principal = principal;
    session.credentials = credentials;
    session.settle?.(principal);
    session.held = [];
    const pending = await this.deps.approvals.views.listPending(1000);
    const held = session.held;
    session.held = null;
    this.send(session, { type: 'hello', approver: { id: principal.id, role: principal.role }, pending });
    for (const frame of held) this.write(session, frame);
  }

  /**
   * Re-reads the user behind every authenticated session (or only `userId`'s) and closes those
   * whose power is gone: user management in this process calls it at once, the
   * `revalidate-approver-sockets` background job every polling interval (that is how a change
   * made by the CLI or another gateway arrives).
   */
  async revalidate(userId?: string): Promise<void> {
    const checks: Promise<unknown>[] = [];
    for (const s of [...this.sessions]) if (s.principal && (userId === undefined || s.principal.id === userId)) checks.push(this.recheck(s));
    await Promise.all(checks);
  }

  /** Re-reads the user behind a session, so a disabled approver loses the socket at once. */
  private async recheck(session: Session): Promise<Principal | null> {
    if (!session.credentials) return null;
    try {
      const principal = await this.deps.auth.authenticate(session.credentials);
      if (principal && this.deps.policy.hasPermission(principal.role, APPROVAL_VIEW)) return (session.principal = principal);
      this.refuse(session, CLOSE_FORBIDDEN, 'approver access was withdrawn');
    } catch (err) {
      this.refuse(session, CLOSE_UNAUTHORIZED, (err as Error).message);
    }
    return null;
  }

  private async onMessage(session: Session, data: unknown): Promise<void> {
    if (typeof data !== 'string') return this.sendError(session, undefined, 'bad_message', 'frames must be JSON text');
    if (jsonTooDeep(data)) return this.sendError(session, undefined, 'bad_message', `the frame nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
    let raw: unknown;
    try {
      raw = JSON.parse(data);
    } catch {
      return this.sendError(session, undefined, 'bad_message', 'the frame is not valid JSON');
    }
    const parsed = clientFrame.safeParse(raw);
    const refOf = (raw as { ref?: unknown } | null)?.ref;
    const echoRef = typeof refOf === 'string' || typeof refOf === 'number' ? refOf : undefined;
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return this.sendError(session, echoRef, 'bad_message', `${issue.path.join('.') || 'message'}: ${issue.message}`);
    }
    const message = parsed.data;
    if (message.type === 'auth') {
      if (session.principal) return this.sendError(session, undefined, 'bad_message', 'already authenticated');
      return this.login(session, { authorization: `Bearer ${message.token}` });
    }
    if (!session.principal) return this.sendError(session, message.ref, 'unauthorized', 'authenticate first');
    const principal = await this.recheck(session);
    if (!principal) return;
    if (message.type === 'list') {
      return this.send(session, { type: 'pending', ref: message.ref, pending: await this.deps.approvals.views.listPending(message.limit ?? 1000) });
    }
    try {
      const { approval, grant } = await this.deps.approvals.requests.decideWith(principal, message.id, message.decision, message.reason, {}, { grant: message.grant });
      this.send(session, { type: 'decide.ok', ref: message.ref, approval: this.deps.approvals.views.summarize(approval), ...(message.grant ? { grant } : {}) });
    } catch (err) {
      if (err instanceof AppError) {
        return this.send(session, wsErrorOf(message.ref, err));
      }
      this.deps.logger.error({ err }, 'decide over WebSocket failed');
      this.sendError(session, message.ref, 'internal', 'internal error');
    }
  }

  private broadcast(event: ApprovalEvent) {
    if (event.type === 'approval.executed') return;
    if (this.sessions.size === 0) return;
    const frame = encodeServerFrame({ type: event.type, approval: this.deps.approvals.views.summarize(event.approval) });
    for (const s of this.sessions) {
      if (s.held) s.held.push(frame);
      else if (s.principal) this.write(s, frame);
    }
  }

  private send(session: Session, frame: ServerFrame) {
    this.write(session, encodeServerFrame(frame));
  }

  private sendError(session: Session, ref: string | number | undefined, code: ErrorCode, message: string) {
    this.send(session, wsError(ref, code, message));
  }

  private write(session: Session, frame: string) {
    const raw = session.ws.raw as WebSocket | undefined;
    // An approver that does not read its socket must not make the gateway buffer without bound:
    // it is cut off, and resyncs from `hello` when it reconnects.
    if (raw && raw.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.deps.logger.warn({ approver: session.principal?.id, buffered: raw.bufferedAmount }, 'approver socket is not reading; closing it');
      raw.terminate();
      this.drop(session);
      return;
    }
    try {
      if (session.ws.readyState === 1) session.ws.send(frame);
    } catch (err) {
      this.deps.logger.debug({ err }, 'socket write failed');
      this.drop(session);
    }
  }

  private refuse(session: Session, code: number, reason: string) {
    this.send(session, wsError(undefined, code === CLOSE_FORBIDDEN ? 'forbidden' : 'unauthorized', reason));
    session.ws.close(code, reason.slice(0, 120));
    this.drop(session);
  }

  private drop(session: Session) {
    session.settle?.();
    if (session.authTimer) clearTimeout(session.authTimer);
    session.authTimer = null;
    this.sessions.delete(session);
  }

  private heartbeat() {
    for (const s of this.sessions) {
      const raw = s.ws.raw as WebSocket | undefined;
      if (!s.alive) {
        raw?.terminate();
        this.drop(s);
        continue;
      }
      s.alive = false;
      try {
        raw?.ping();
      } catch {
        this.drop(s);
      }
      if (s.principal) void this.recheck(s);
    }
  }

  /** Closes every socket with "going away" (shutdown). */
  close(code = CLOSE_GOING_AWAY, reason = 'gateway shutting down') {
    clearInterval(this.pingTimer);
    this.unsubscribe();
    for (const s of [...this.sessions]) {
      try {
        s.ws.close(code, reason);
      } catch {
        /* already closed */
      }
      this.drop(s);
    }
  }
}
