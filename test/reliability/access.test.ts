import * as crypto from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hashToken, sameHash, tokenPrefix } from '../../src/auth/tokens.js';
import { createUserWithToken } from '../../src/db/seed.js';
import { createLogger } from '../../src/logger.js';
import { api, startTestGateway, type ApiResponse, type TestGateway } from '../helpers.js';
import { connectApprover } from '../ws-client.js';

// The real timingSafeEqual, watched: the tests below see whether a comparison went through it.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

type Who = 'none' | 'bad' | 'disabled' | 'guest' | 'dev' | 'admin';
const WHO: Who[] = ['none', 'bad', 'disabled', 'guest', 'dev', 'admin'];
const BAD_TOKEN = 'tg_this-token-was-never-issued-0123456789abcdef';

interface Row {
  name: string;
  method: string;
  /** The path; `:dev` is replaced by a fresh pending request made by dev_user for each caller. */
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  expect: Record<Who, number>;
}

const NO_ONE = { none: 401, bad: 401, disabled: 401 };
const TABLE: Row[] = [
  { name: 'health', method: 'GET', path: '/health', expect: { none: 200, bad: 401, disabled: 401, guest: 200, dev: 200, admin: 200 } },
  { name: 'list tools', method: 'GET', path: '/tools', expect: { ...NO_ONE, guest: 200, dev: 200, admin: 200 } },
  { name: 'call a LOW tool', method: 'POST', path: '/tools/echo/call', body: { arguments: {} }, expect: { ...NO_ONE, guest: 200, dev: 200, admin: 200 } },
  { name: 'call a MEDIUM tool for developers', method: 'POST', path: '/tools/medium_tool/call', body: {}, expect: { ...NO_ONE, guest: 403, dev: 200, admin: 200 } },
  { name: 'call a HIGH tool (async)', method: 'POST', path: '/tools/write_file/call', body: { arguments: { path: 'a', content: 'b' } }, headers: { prefer: 'respond-async' }, expect: { ...NO_ONE, guest: 403, dev: 202, admin: 202 } },
  { name: 'call an admin-only HIGH tool (async)', method: 'POST', path: '/tools/git_commit/call', body: { arguments: { message: 'm' } }, headers: { prefer: 'respond-async' }, expect: { ...NO_ONE, guest: 403, dev: 403, admin: 202 } },
  { name: 'call an unknown tool', method: 'POST', path: '/tools/nope/call', body: {}, expect: { ...NO_ONE, guest: 404, dev: 404, admin: 404 } },
  { name: 'ask for a decision', method: 'POST', path: '/api/approvals', body: { tool: 'execute_bash', arguments: { command: 'ls' } }, expect: { ...NO_ONE, guest: 403, dev: 202, admin: 202 } },
  { name: 'list pending', method: 'GET', path: '/api/approvals/pending', expect: { ...NO_ONE, guest: 403, dev: 403, admin: 200 } },
  { name: "read dev's request", method: 'GET', path: '/api/approvals/:dev', expect: { ...NO_ONE, guest: 404, dev: 200, admin: 200 } },
  { name: "long-poll dev's request", method: 'GET', path: '/api/approvals/:dev?wait=0', expect: { ...NO_ONE, guest: 404, dev: 200, admin: 200 } },
  { name: "cancel dev's request", method: 'DELETE', path: '/api/approvals/:dev', expect: { ...NO_ONE, guest: 404, dev: 200, admin: 403 } },
  { name: "approve dev's request", method: 'POST', path: '/api/approvals/:dev/approve', body: { reason: 'ok' }, expect: { ...NO_ONE, guest: 403, dev: 403, admin: 200 } },
  { name: "reject dev's request", method: 'POST', path: '/api/approvals/:dev/reject', body: { reason: 'no' }, expect: { ...NO_ONE, guest: 403, dev: 403, admin: 200 } },
  { name: 'read the audit log', method: 'GET', path: '/security/logs/audit?limit=5', expect: { ...NO_ONE, guest: 403, dev: 403, admin: 200 } },
];

/** A fresh pending request of dev_user's, for the table's `:dev` rows. */
async function devRequest(t: TestGateway): Promise<string> {
  const res = await api(t.app, 'POST', '/tools/write_file/call', { token: t.tokens.dev, body: { arguments: { path: 'x', content: 'y' } }, headers: { prefer: 'respond-async' } });
  return res.body.approval.id as string;
}

/** Calls every endpoint of the table as each caller (through `app.request()`: no socket); `check` sees each answer. */
async function callTheTable(t: TestGateway, tokens: Record<Who, string | undefined>, check: (row: Row, who: Who, res: ApiResponse) => void = () => undefined) {
  for (const row of TABLE) {
    for (const who of WHO) {
      const path = row.path.includes(':dev') ? row.path.replace(':dev', await devRequest(t)) : row.path;
      const res = await api(t.app, row.method, path, { ...(tokens[who] ? { token: tokens[who] } : {}), ...(row.body !== undefined ? { body: row.body } : {}), ...(row.headers ? { headers: row.headers } : {}) });
      check(row, who, res);
    }
  }
}

async function tokensOf(t: TestGateway): Promise<Record<Who, string | undefined>> {
  const disabled = await createUserWithToken(t.gateway.store, 'disabled_admin', 'admin', Date.now());
  (await t.gateway.store.withTransaction((tx) => tx.identity.setUserActive('disabled_admin', false, Date.now())));
  return { none: undefined, bad: BAD_TOKEN, disabled, guest: t.tokens.guest, dev: t.tokens.dev, admin: t.tokens.admin };
}

describe('access control', () => {
  let t: TestGateway;
  let tokens: Record<Who, string | undefined>;
  beforeAll(async () => {
    t = await startTestGateway({
      authTimeoutMs: 300,
      env: { RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0', APPROVAL_MAX_PENDING: '1000' },
    });
    tokens = await tokensOf(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`answers each of ${TABLE.length} endpoints for no token, a bad token, a disabled user, guest, developer and admin as the table says`, async () => {
    const got: string[] = [];
    const want: string[] = [];
    await callTheTable(t, tokens, (row, who, res) => {
      got.push(`${row.name} as ${who}: ${res.status}`);
      want.push(`${row.name} as ${who}: ${row.expect[who]}`);
      if (res.status >= 400) expect(res.body.error, `${row.name} as ${who}`).toMatchObject({ code: expect.any(String), message: expect.any(String) });
    });
    expect(got).toEqual(want);
  });

  it('lets only active approvers open the approvals socket: 4401 for none/bad/disabled, 4403 for guest and developer', async () => {
    const expected: Record<Who, number | 'hello'> = { none: 4401, bad: 4401, disabled: 4401, guest: 4403, dev: 4403, admin: 'hello' };
    for (const who of WHO) {
      const socket = await connectApprover(t.wsUrl, tokens[who]);
      try {
        if (expected[who] === 'hello') expect((await socket.next(() => true)).type).toBe('hello');
        else expect((await socket.closed).code, who).toBe(expected[who]);
      } finally {
        socket.close();
      }
    }
  });

  it('WebSocket actions: admin may list and decide; a socket whose user is disabled mid-session is closed 4401 on its next action', async () => {
    const admin = await connectApprover(t.wsUrl, t.tokens.admin);
    const laterDisabledToken = await createUserWithToken(t.gateway.store, 'soon_disabled', 'admin', Date.now());
    const later = await connectApprover(t.wsUrl, laterDisabledToken);
    try {
      await admin.next((f) => f.type === 'hello');
      await later.next((f) => f.type === 'hello');
      admin.ws.send(JSON.stringify({ type: 'list', ref: 'l' }));
      expect((await admin.next((f) => f.ref === 'l')).type).toBe('pending');
      const id = await devRequest(t);
      admin.ws.send(JSON.stringify({ type: 'decide', ref: 'd', id, decision: 'approve', reason: 'ok' }));
      expect((await admin.next((f) => f.ref === 'd')).type).toBe('decide.ok');
      (await t.gateway.store.withTransaction((tx) => tx.identity.setUserActive('soon_disabled', false, Date.now())));
      later.ws.send(JSON.stringify({ type: 'decide', ref: 'x', id: await devRequest(t), decision: 'approve', reason: 'ok' }));
      expect((await later.closed).code).toBe(4401);
    } finally {
      admin.close();
      later.close();
    }
  });

  it('refuses self-approval even to an admin, over HTTP and over WebSocket', async () => {
    const own = await api(t.url, 'POST', '/tools/git_commit/call', { token: t.tokens.admin, body: { arguments: { message: 'mine' } }, headers: { prefer: 'respond-async' } });
    const id = own.body.approval.id;
    for (const verdict of ['approve', 'reject']) {
      const res = await api(t.url, 'POST', `/api/approvals/${id}/${verdict}`, { token: t.tokens.admin, body: { reason: 'me' } });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('self_approval');
    }
    const socket = await connectApprover(t.wsUrl, t.tokens.admin);
    try {
      await socket.next((f) => f.type === 'hello');
      socket.ws.send(JSON.stringify({ type: 'decide', ref: 's', id, decision: 'approve', reason: 'me' }));
      expect(await socket.next((f) => f.ref === 's')).toMatchObject({ type: 'error', code: 'self_approval' });
    } finally {
      socket.close();
    }
    expect((await t.gateway.store.approvals.request(id))!.status).toBe('pending');
    expect((await t.gateway.store.approvals.decisions(id))).toEqual([]);
  });

  it('ignores X-User-ID when TRUST_USER_HEADER is off, over HTTP and WebSocket', async () => {
    expect((await api(t.url, 'GET', '/api/approvals/pending', { headers: { 'x-user-id': 'admin_user' } })).status).toBe(401);
    expect((await api(t.url, 'GET', '/api/approvals/pending', { token: t.tokens.guest, headers: { 'x-user-id': 'admin_user' } })).status).toBe(403);
    const res = await api(t.url, 'POST', '/tools/write_file/call', { token: t.tokens.dev, headers: { 'x-user-id': 'admin_user', prefer: 'respond-async' }, body: { arguments: { path: 'a', content: 'b' } } });
    expect(res.body.approval.requester.id).toBe('dev_user');
    const socket = await connectApprover(t.wsUrl, undefined, { headers: { 'x-user-id': 'admin_user' } });
    expect((await socket.closed).code).toBe(4401);
  });

  it('refuses every token one character off a real one (same prefix, same length, or one longer or shorter), over HTTP and WebSocket', async () => {
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    for (const token of [t.tokens.guest, t.tokens.dev, t.tokens.admin]) {
      const nearMisses = [
        token.slice(0, -1) + flip(token.at(-1)!),
        token.slice(0, 10) + flip(token[10]!) + token.slice(11),
        token.slice(0, -1),
        `${token}A`,
      ];
      for (const wrong of nearMisses) {
        expect(tokenPrefix(wrong)).toBe(tokenPrefix(token));
        const res = await api(t.url, 'GET', '/tools', { token: wrong });
        expect(res.status, wrong).toBe(401);
        expect(res.body.error.code).toBe('unauthorized');
        const socket = await connectApprover(t.wsUrl, wrong);
        expect((await socket.closed).code).toBe(4401);
      }
      expect((await api(t.url, 'GET', '/tools', { token })).status).toBe(200);
    }
  });

  it('compares token hashes with crypto.timingSafeEqual, and only equal hashes match', async () => {
    const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);
    timingSafeEqual.mockClear();
    expect((await api(t.url, 'GET', '/api/approvals/pending', { token: t.tokens.admin })).status).toBe(200);
    // The authentication of that request compared the stored SHA-256 with the token's, in constant time.
    expect(timingSafeEqual).toHaveBeenCalledWith(Buffer.from(hashToken(t.tokens.admin), 'hex'), Buffer.from(hashToken(t.tokens.admin), 'hex'));

    const h = hashToken('tg_a');
    expect(sameHash(h, h)).toBe(true);
    expect(sameHash(h, hashToken('tg_b'))).toBe(false);
    expect(sameHash(h, h.slice(0, 62))).toBe(false);
    expect(sameHash(h, '')).toBe(false);
    expect(sameHash(h, 'zz'.repeat(32))).toBe(false);
  });
});

describe('tokens in the log', () => {
  it('never writes a token, its secret part or its hash to the log, not even at trace level: every endpoint of the table for every caller, and sockets authenticated by header and by auth frame', async () => {
    let logged = '';
    const log = new PassThrough();
    log.on('data', (d) => (logged += d));
    const t = await startTestGateway({
      logger: createLogger('trace', { destination: log }),
      env: { RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0', APPROVAL_MAX_PENDING: '1000' },
    });
    try {
      const callers = await tokensOf(t);
      await callTheTable(t, callers);
      const tokens = Object.values(callers).filter((token) => token !== undefined);
      for (const token of tokens) {
        const byHeader = await connectApprover(t.wsUrl, token);
        byHeader.close();
        const byFrame = await connectApprover(t.wsUrl);
        byFrame.ws.send(JSON.stringify({ type: 'auth', token }));
        await Promise.race([byFrame.closed, byFrame.next((f) => f.type === 'hello')]);
        byFrame.close();
      }
      expect(tokens).toHaveLength(5);
      expect(logged).toContain('"msg":"request"'); // the request log, at least, did write
      for (const token of tokens) {
        expect(logged).not.toContain(token);
        expect(logged).not.toContain(token.slice(3));
        expect(logged).not.toContain(hashToken(token));
      }
    } finally {
      await t.close();
    }
  });
});

describe('access control with TRUST_USER_HEADER=true', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ env: { TRUST_USER_HEADER: 'true', RATE_LIMIT_PER_MINUTE: '0', AUTH_FAILURE_LIMIT_PER_MINUTE: '0' } });
    await createUserWithToken(t.gateway.store, 'off_user', 'admin', Date.now());
    (await t.gateway.store.withTransaction((tx) => tx.identity.setUserActive('off_user', false, Date.now())));
  });
  afterAll(async () => {
    await t?.close();
  });

  it('accepts X-User-ID for active users only, and a token still wins over the header', async () => {
    expect((await api(t.url, 'GET', '/api/approvals/pending', { headers: { 'x-user-id': 'admin_user' } })).status).toBe(200);
    expect((await api(t.url, 'GET', '/api/approvals/pending', { headers: { 'x-user-id': 'off_user' } })).status).toBe(401);
    expect((await api(t.url, 'GET', '/api/approvals/pending', { headers: { 'x-user-id': 'nobody' } })).status).toBe(401);
    expect((await api(t.url, 'GET', '/api/approvals/pending', { token: t.tokens.guest, headers: { 'x-user-id': 'admin_user' } })).status).toBe(403);
    const socket = await connectApprover(t.wsUrl, undefined, { headers: { 'x-user-id': 'admin_user' } });
    try {
      expect((await socket.next(() => true)).type).toBe('hello');
    } finally {
      socket.close();
    }
  });
});
