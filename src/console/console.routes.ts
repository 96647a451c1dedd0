import { createRoute } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import type { AuthService } from '../auth/auth.service.js';
import type { ConsoleSessions } from '../auth/sessions.service.js';
import { AppError } from '../core/errors.js';
import type { AppEnv } from '../http/context.js';
import { access, errors, json, openApiApp } from '../http/openapi-routes.js';
import { clientAddress } from '../http/rate-limit.js';
import { clearSessionCookie, sessionSecretOf, setSessionCookie, type CookieSettings } from '../http/session-cookie.js';
import { jsonBody } from '../http/validation.js';
import { APPROVAL_MANAGE, type PolicyService, type Principal } from '../policy/policy.service.js';
import type { GrantCaps } from '../approvals/grants.js';
import type { ConsoleAssets } from './assets.js';
import { sessionEnvelopeSchema, signedOutSchema, signInBody } from './console.schemas.js';

export const CONSOLE_PATH = '/console';

export interface ConsoleRoutesDeps {
  sessions: ConsoleSessions;
  auth: AuthService;
  policy: PolicyService;
  assets: ConsoleAssets;
  /** Authentication that accepts the session cookie (and a bearer token). */
  consoleAuth: MiddlewareHandler<AppEnv>;
  cookies: CookieSettings & { trustProxy: number };
  /** The configured caps of standing approvals, so the page offers only what the gateway may grant. */
  grantCaps: GrantCaps;
}

const html = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' as const } } } });
const script = (description: string) => ({ description, content: { 'text/javascript': { schema: { type: 'string' as const } } } });

/**
 * The web console: its page and files, and the session API it signs in with. The queue itself
 * rides the approvers' WebSocket and the approvals API, like every other channel.
 */
export function consoleRoutes(deps: ConsoleRoutesDeps) {
  const { sessions, assets } = deps;
  const app = openApiApp();

  const view = async (principal: Principal) => {
    const live = (await sessions.list(principal.id)).find((s) => s.id === principal.sessionId);
    if (!live) return null;
    return {
      id: live.id,
      user: { id: principal.id, role: principal.role },
      expiresAt: new Date(live.expiresAt).toISOString(),
      can: { decide: deps.policy.hasPermission(principal.role, APPROVAL_MANAGE), audit: principal.role === 'admin' },
      grantCaps: {
        HIGH: capView(deps.grantCaps.HIGH),
        CRITICAL: capView(deps.grantCaps.CRITICAL),
      },
    };
  };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/session',
      tags: ['approvers'],
      summary: 'Sign in to the web console: exchange an approver\u2019s token for a session cookie',
      description:
        'Answers with `Set-Cookie: toolgate_session=…; HttpOnly; SameSite=Strict` (and `Secure` over HTTPS). The session is stored hashed, ' +
        'expires after CONSOLE_SESSION_TTL, and ends at once when it is revoked or its user is disabled or loses approval.view. A refused token counts ' +
        'against the address\u2019s failed-authentication limit.',
      ...access('approval.view'),
      middleware: [jsonBody()] as const,
      request: { body: { required: true, content: json(signInBody) } },
      responses: { 200: { description: 'signed in', content: json(sessionEnvelopeSchema) }, ...errors(400, 401, 403, 415, 429) },
    }),
    async (c) => {
      const { token } = c.req.valid('json');
      const signed = await sessions.signIn(token, { address: clientAddress(c, deps.cookies.trustProxy), userAgent: c.req.header('user-agent') ?? '' });
      setSessionCookie(c, signed.secret, signed.session.expiresAt, deps.cookies);
      return c.json({ session: await view(signed.principal) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/session',
      tags: ['approvers'],
      summary: 'The console session this browser holds, or null',
      ...access('open'),
      responses: { 200: { description: 'the session, or null when signed out or ended', content: json(sessionEnvelopeSchema) } },
    }),
    async (c) => {
      const principal = await sessionPrincipal(c, deps.auth);
      const session = principal ? await view(principal) : null;
      if (!session && sessionSecretOf(c) !== undefined) clearSessionCookie(c, deps.cookies);
      return c.json({ session }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/session',
      tags: ['approvers'],
      summary: 'Sign out: end this browser\u2019s console session',
      ...access('approval.view'),
      middleware: [deps.consoleAuth] as const,
      responses: { 200: { description: 'signed out (false: there was no session to end)', content: json(signedOutSchema) }, ...errors(401, 403) },
    }),
    async (c) => {
      const principal = c.get('principal');
      const signedOut = principal ? await sessions.signOut(principal) : false;
      clearSessionCookie(c, deps.cookies);
      return c.json({ signedOut }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['approvers'],
      summary: 'Redirects to the web console',
      ...access('open'),
      responses: { 302: { description: 'to /console' } },
    }),
    (c) => c.redirect(CONSOLE_PATH, 302),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: CONSOLE_PATH,
      tags: ['approvers'],
      summary: 'The web console (docs/console.md)',
      ...access('open'),
      responses: { 200: html('the console page; it signs in with an approver\u2019s token') },
    }),
    (c) => {
      c.header('Content-Security-Policy', assets.csp);
      c.header('Cache-Control', 'no-cache');
      return c.html(assets.page.body, 200);
    },
  );

  for (const [path, files] of [
    [`${CONSOLE_PATH}/assets/{file}`, assets.files],
    [`${CONSOLE_PATH}/vendor/{file}`, assets.vendor],
  ] as const) {
    app.openapi(
      createRoute({
        method: 'get',
        path,
        tags: ['approvers'],
        summary: path.includes('vendor') ? 'A browser library the console uses, served from node_modules' : 'A file of the console (script or style)',
        ...access('open'),
        responses: { 200: script('the file'), ...errors(404) },
      }),
      (c) => {
        const file = files.get(c.req.param('file') ?? '');
        if (!file) throw new AppError('not_found', 'no such console file');
        c.header('Cache-Control', 'no-cache');
        return c.body(file.body, 200, { 'Content-Type': file.type });
      },
    );
  }

  return app;
}

const capView = (cap: GrantCaps['HIGH']) => (cap ? { maxSeconds: Math.floor(cap.maxMs / 1000), maxUses: cap.maxUses } : null);

/** The principal of the request's session cookie, or undefined when it has none or it ended (never throws). */
async function sessionPrincipal(c: Context, auth: AuthService): Promise<Principal | undefined> {
  const secret = sessionSecretOf(c);
  if (secret === undefined) return undefined;
  try {
    return await auth.fromSession(secret);
  } catch {
    return undefined;
  }
}
