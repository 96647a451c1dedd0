import { afterEach, describe, expect, it } from 'vitest';
import { api, runCli, startTestGateway, type TestGateway } from './helpers.js';
import { connectApprover } from './ws-client.js';
import { DAY_MS } from '../src/approvals/retention.js';

const open: TestGateway[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});
async function gateway(options: Parameters<typeof startTestGateway>[0] = {}) {
  const t = await startTestGateway(options);
  open.push(t);
  return t;
}

/** Signs in with `token`; the session cookie's `name=value` and the Set-Cookie header. */
async function signIn(t: TestGateway, token: string, headers: Record<string, string> = {}) {
  const res = await api(t.url, 'POST', '/api/session', { body: { token }, headers });
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { res, setCookie, cookie: setCookie.split(';')[0]! };
}

describe('console sessions', () => {
  it('exchanges an approver token for an HttpOnly, SameSite=Strict cookie whose secret is stored only as a hash', async () => {
    const t = await gateway();
    const { res, setCookie, cookie } = await signIn(t, t.tokens.admin);
    expect(res.status).toBe(200);
    expect(res.body.session).toMatchObject({ user: { id: 'admin_user', role: 'admin' }, can: { decide: true, audit: true } });
    expect(setCookie).toMatch(/^toolgate_session=tgs_[A-Za-z0-9_-]{43}; /);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\//);
    expect(setCookie).not.toMatch(/Secure/);
    const secret = cookie.split('=')[1]!;
    const stored = await t.query('SELECT * FROM console_sessions');
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(JSON.stringify(stored)).not.toContain(t.tokens.admin);

    const me = await api(t.url, 'GET', '/api/session', { headers: { cookie } });
    expect(me.body.session.id).toBe(res.body.session.id);
    const pending = await api(t.url, 'GET', '/api/approvals/pending', { headers: { cookie } });
    expect(pending.status).toBe(200);
  });

  it('sets Secure when the gateway is reached over HTTPS (PUBLIC_URL, or a trusted proxy saying so)', async () => {
    const viaPublicUrl = await gateway({ env: { PUBLIC_URL: 'https://gate.example.com' } });
    expect((await signIn(viaPublicUrl, viaPublicUrl.tokens.admin)).setCookie).toMatch(/; Secure/);
    const viaProxy = await gateway({ env: { TRUST_PROXY: '1' } });
    expect((await signIn(viaProxy, viaProxy.tokens.admin, { 'x-forwarded-proto': 'https', 'x-forwarded-for': '10.0.0.1' })).setCookie).toMatch(/; Secure/);
    expect((await signIn(viaProxy, viaProxy.tokens.admin, { 'x-forwarded-for': '10.0.0.2' })).setCookie).not.toMatch(/Secure/);
  });

  it('refuses roles without approval.view and bad tokens; failed sign-ins count against the address limit', async () => {
    const t = await gateway({ env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '3' } });
    const guest = await signIn(t, t.tokens.guest);
    expect(guest.res.status).toBe(403);
    expect(guest.res.body.error.code).toBe('permission_denied');
    expect(guest.setCookie).toBe('');
    // Looking at the session without one is not a failure.
    for (let i = 0; i < 5; i++) expect((await api(t.url, 'GET', '/api/session')).body).toEqual({ session: null });
    for (let i = 0; i < 3; i++) expect((await signIn(t, `tg_wrong${i}`)).res.status).toBe(401);
    const blocked = await signIn(t, t.tokens.admin);
    expect(blocked.res.status).toBe(429);
    expect(blocked.res.body.error.code).toBe('rate_limited');
    expect(blocked.setCookie).toBe('');
  });

  it('honours the cookie on state-changing calls only from the gateway\u2019s own origin, and never for tool calls', async () => {
    const t = await gateway();
    const { cookie } = await signIn(t, t.tokens.admin);
    const made = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'p', content: 'c' } }, headers: { prefer: 'respond-async' } });
    const id = made.body.approval.id;
    const reject = (headers: Record<string, string>) => api(t.url, 'POST', `/api/approvals/${id}/reject`, { body: { reason: 'no' }, headers: { cookie, ...headers } });
    // No Origin at all: a browser always sends one, so a cookie without it is not our page.
    expect((await reject({})).body.error.code).toBe('forbidden_origin');
    expect((await reject({ origin: 'http://127.0.0.1:1' })).body.error.code).toBe('forbidden_origin');
    expect((await reject({ origin: t.url, 'sec-fetch-site': 'same-site' })).body.error.code).toBe('forbidden_origin');
    expect((await api(t.url, 'GET', `/api/approvals/${id}`, { token: t.tokens.admin })).body.approval.status).toBe('pending');
    // A tool call does not take the cookie.
    const tool = await api(t.url, 'POST', '/tools/echo/call', { body: { arguments: {} }, headers: { cookie, origin: t.url } });
    expect(tool.status).toBe(401);
    const ok = await reject({ origin: t.url, 'sec-fetch-site': 'same-origin' });
    expect(ok.status).toBe(200);
    expect(ok.body.approval.decisions).toMatchObject([{ approver: 'admin_user', verdict: 'reject' }]);
  });

  it('lets the WebSocket take the cookie only on an upgrade from the gateway\u2019s own origin', async () => {
    const t = await gateway();
    const { cookie } = await signIn(t, t.tokens.admin);
    const own = await connectApprover(t.wsUrl, undefined, { headers: { cookie, origin: t.url } });
    expect((await own.next((f) => f.type === 'hello')).approver).toEqual({ id: 'admin_user', role: 'admin' });
    await own.close();
    const noOrigin = await connectApprover(t.wsUrl, undefined, { headers: { cookie } });
    expect((await noOrigin.closed).code).toBe(4403);
    await expect(connectApprover(t.wsUrl, undefined, { headers: { cookie, origin: 'http://evil.example' } })).rejects.toThrow(/403/);
  });

  it('ends sessions at once on sign-out, disable, token revocation and expiry; the socket closes too', async () => {
    let now = Date.now();
    const t = await gateway({ env: { CONSOLE_SESSION_TTL: '600' }, clock: { now: () => now } });
    const socketOf = async (cookie: string) => {
      const ws = await connectApprover(t.wsUrl, undefined, { headers: { cookie, origin: t.url } });
      await ws.next((f) => f.type === 'hello');
      return ws;
    };
    const alive = async (cookie: string) => (await api(t.url, 'GET', '/api/approvals/pending', { headers: { cookie } })).status;

    const a = (await signIn(t, t.tokens.admin)).cookie;
    const out = await api(t.url, 'DELETE', '/api/session', { headers: { cookie: a, origin: t.url } });
    expect(out.body).toEqual({ signedOut: true });
    expect(out.headers.get('set-cookie')).toMatch(/^toolgate_session=; .*Max-Age=0/);
    expect(await alive(a)).toBe(401);

    const admin2 = await t.gateway.users.add('test', 'admin_two', 'admin');
    const b = (await signIn(t, admin2)).cookie;
    const bSocket = await socketOf(b);
    await t.gateway.users.disable('test', 'admin_two');
    expect((await bSocket.closed).code).toBe(4401);
    expect(await alive(b)).toBe(401);
    await t.gateway.users.enable('test', 'admin_two');
    expect(await alive(b)).toBe(401); // enabling again does not bring old sessions back

    const c = (await signIn(t, t.tokens.admin)).cookie;
    const cSocket = await socketOf(c);
    const fresh = await t.gateway.users.issueToken('test', 'admin_user', { revokeOthers: true });
    expect((await cSocket.closed).code).toBe(4401);
    expect(await alive(c)).toBe(401);

    const d = (await signIn(t, fresh)).cookie;
    expect(await alive(d)).toBe(200);
    now += 601_000;
    expect(await alive(d)).toBe(401);

    const events = await t.query<{ action: string; details: string }>("SELECT action, details FROM audit_events WHERE action LIKE 'session.%' ORDER BY seq");
    expect(events.map((e) => e.action)).toEqual(['session.started', 'session.ended', 'session.started', 'session.revoked', 'session.started', 'session.revoked', 'session.started']);
    // Each names the session by its id (not a secret), so a revocation can be matched to its sign-in.
    const started = JSON.parse(events[2]!.details) as { id: string; user: string };
    expect(started.user).toBe('admin_two');
    expect(JSON.parse(events[3]!.details)).toMatchObject({ user: 'admin_two', ids: [started.id], reason: 'user disabled' });
  });

  it("ends a demoted user's session at once: the next call is refused and the socket closes at the next recheck", async () => {
    const t = await gateway({ env: { APPROVAL_POLLING_INTERVAL: '0.05' } });
    const admin2 = await t.gateway.users.add('test', 'admin_two', 'admin');
    const { cookie } = await signIn(t, admin2);
    const ws = await connectApprover(t.wsUrl, undefined, { headers: { cookie, origin: t.url } });
    await ws.next((f) => f.type === 'hello');
    // No command changes a role yet; the row is what every check reads.
    await t.query("UPDATE users SET role = 'guest' WHERE id = 'admin_two'");
    const refused = await api(t.url, 'GET', '/api/approvals/pending', { headers: { cookie } });
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toContain('may no longer use the console');
    expect((await ws.closed).code).toBe(4401);
  });

  it('forgets sessions that ended long ago in the retention job', async () => {
    let now = Date.UTC(2025, 0, 1);
    const t = await gateway({ clock: { now: () => now } });
    const ended = (await signIn(t, t.tokens.admin)).cookie;
    await api(t.url, 'DELETE', '/api/session', { headers: { cookie: ended, origin: t.url } });
    now += DAY_MS;
    await signIn(t, t.tokens.admin);
    const count = async () => Number((await t.query<{ n: number | string }>('SELECT count(*) AS n FROM console_sessions'))[0]!.n);
    now += 2 * DAY_MS;
    await t.gateway.jobs.tick();
    expect(await count()).toBe(2);
    now += 30 * DAY_MS;
    await t.gateway.jobs.tick();
    expect(await count()).toBe(0); // both ended more than 30 days ago: one signed out, one expired after 12 hours
  });

  it('lists and revokes sessions from the CLI; the revoked session is refused at once and its socket closed', { tags: ['process'] }, async () => {
    const t = await gateway({ env: { APPROVAL_POLLING_INTERVAL: '0.1' } });
    const { res, cookie } = await signIn(t, t.tokens.admin);
    const id = res.body.session.id as string;
    const ws = await connectApprover(t.wsUrl, undefined, { headers: { cookie, origin: t.url } });
    await ws.next((f) => f.type === 'hello');
    const env = { DATABASE_PATH: t.dbPath };
    const listed = await runCli(['sessions', 'list', '--json'], env);
    expect(listed.status).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ id, userId: 'admin_user' }]);
    const revoked = await runCli(['sessions', 'revoke', id], env);
    expect(revoked.stdout).toBe(`revoked session ${id} of admin_user\n`);
    expect((await api(t.url, 'GET', '/api/approvals/pending', { headers: { cookie } })).status).toBe(401);
    expect((await ws.closed).code).toBe(4401);
    const again = await runCli(['sessions', 'revoke', id], env);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`no live session "${id}"`);
    expect((await runCli(['sessions', 'list'], env)).stdout).toBe('no live console sessions\n');
  });
});
