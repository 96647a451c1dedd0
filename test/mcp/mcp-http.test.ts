import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { api, pendingApprovals, startTestGateway, eventually } from '../helpers.js';
import { connectHttp, gateScenarios, textOf } from './mcp-clients.js';

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};
const MCP_HEADERS = { accept: 'application/json, text/event-stream' };

describe('MCP front door over Streamable HTTP (SDK Client)', () => {
  gateScenarios(connectHttp);
});

describe('MCP front door: authentication and sessions', () => {
  it('answers 401 with a JSON error body without a valid token when RBAC is on', async () => {
    const t = await startTestGateway();
    try {
      const none = await api(t.url, 'POST', '/mcp', { body: INITIALIZE, headers: MCP_HEADERS });
      expect(none.status).toBe(401);
      expect(none.body.error).toMatchObject({ code: 'unauthorized' });
      const bad = await api(t.url, 'POST', '/mcp', { body: INITIALIZE, headers: MCP_HEADERS, token: 'not-a-token' });
      expect(bad.status).toBe(401);
      expect(bad.body.error.code).toBe('unauthorized');
      await expect(connectHttp(t.url, undefined)).rejects.toThrow();
    } finally {
      await t.close();
    }
  });

  it('lets anonymous callers in when RBAC is off, but not from a browser origin outside ALLOWED_ORIGINS', async () => {
    const t = await startTestGateway({ env: { RBAC_ENABLED: 'false', ALLOWED_ORIGINS: 'http://localhost:6274' } });
    try {
      const client = await connectHttp(t.url, undefined);
      const names = (await client.listTools()).tools.map((x) => x.name);
      expect(names).toEqual(expect.arrayContaining(['echo', 'git_commit', 'execute_bash']));
      await client.close();
      const foreign = await api(t.url, 'POST', '/mcp', { body: INITIALIZE, headers: { ...MCP_HEADERS, origin: 'http://evil.example' } });
      expect(foreign.status).toBe(403);
      expect(foreign.body.error.code).toBe('forbidden_origin');
      const unlisted = await api(t.url, 'POST', '/mcp', { body: INITIALIZE, headers: { ...MCP_HEADERS, origin: 'http://localhost:9999' } });
      expect(unlisted.status).toBe(403);
      const local = await api(t.url, 'POST', '/mcp', { body: INITIALIZE, headers: { ...MCP_HEADERS, origin: 'http://localhost:6274' } });
      expect(local.status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('refuses a session to any principal but the one that opened it, and a disabled user at once', async () => {
    const t = await startTestGateway();
    try {
      const init = await api(t.url, 'POST', '/mcp', { body: INITIALIZE, headers: MCP_HEADERS, token: t.tokens.dev });
      expect(init.status).toBe(200);
      const session = init.headers.get('mcp-session-id')!;
      expect(session).toBeTruthy();
      const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
      const headers = { ...MCP_HEADERS, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
      const stolen = await api(t.url, 'POST', '/mcp', { body: list, headers, token: t.tokens.admin });
      expect(stolen.status).toBe(403);
      expect(stolen.body.error.code).toBe('forbidden');
      const unknown = await api(t.url, 'POST', '/mcp', { body: list, headers: { ...headers, 'mcp-session-id': 'nope' }, token: t.tokens.dev });
      expect(unknown.status).toBe(404);

      const client = await connectHttp(t.url, t.tokens.dev);
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      (await t.gateway.store.withTransaction((tx) => tx.identity.setUserActive('dev_user', false, Date.now())));
      await expect(client.listTools()).rejects.toThrow(/user_disabled/);
      const direct = await api(t.url, 'POST', '/mcp', { body: list, headers, token: t.tokens.dev });
      expect(direct.status).toBe(401);
      expect(direct.body.error.code).toBe('user_disabled');
      await client.close().catch(() => undefined);
    } finally {
      await t.close();
    }
  });

  it('ends a session on DELETE and cancels the calls still waiting in it', async () => {
    const t = await startTestGateway();
    try {
      const client = await connectHttp(t.url, t.tokens.dev);
      const call = client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } }).catch((err: Error) => err);
      const [pending] = await pendingApprovals(t);
      await (client.transport as StreamableHTTPClientTransport).terminateSession();
      await client.close();
      await call;
      const after = await eventually(async () => {
        const r = await api(t.url, 'GET', `/api/approvals/${pending.id}`, { token: t.tokens.admin });
        return r.body.approval.status === 'cancelled' ? r.body.approval : null;
      });
      expect(after.statusReason).toBe('caller disconnected');
    } finally {
      await t.close();
    }
  });

  it('cancels the pending request when the client cancels the call', async () => {
    const t = await startTestGateway();
    try {
      const client = await connectHttp(t.url, t.tokens.dev);
      const controller = new AbortController();
      const call = client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } }, undefined, { signal: controller.signal }).catch((err: Error) => err);
      const [pending] = await pendingApprovals(t);
      controller.abort('user pressed stop');
      expect(await call).toBeInstanceOf(Error);
      await eventually(async () => (await api(t.url, 'GET', `/api/approvals/${pending.id}`, { token: t.tokens.admin })).body.approval.status === 'cancelled');
      await client.close();
    } finally {
      await t.close();
    }
  });

  it('returns isError naming the expiry and the request id when nobody decides in time', async () => {
    const t = await startTestGateway({ env: { APPROVAL_TIMEOUT: '0.3' } });
    try {
      const client = await connectHttp(t.url, t.tokens.dev);
      const result = (await client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } })) as CallToolResult;
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/^Expired: no approver decided on the call to "write_file" before its timeout \(request [0-9a-f]{8}, id [0-9a-f-]{36}\)/);
      expect(result._meta?.['toolgate/error']).toMatchObject({ code: 'approval_expired' });
      await client.close();
    } finally {
      await t.close();
    }
  });

  it('answers a call still waiting at shutdown with an isError result saying so', async () => {
    const t = await startTestGateway();
    try {
      const client = await connectHttp(t.url, t.tokens.dev);
      const call = client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } });
      await pendingApprovals(t);
      const closing = t.close();
      const result = (await call) as CallToolResult;
      await closing;
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/^toolgate is shutting down \(request [0-9a-f]{8}/);
      await client.close().catch(() => undefined);
    } finally {
      await t.close();
    }
  });

  it('answers too many pending requests with an isError result', async () => {
    const t = await startTestGateway({ env: { APPROVAL_MAX_PENDING: '1' } });
    try {
      const client = await connectHttp(t.url, t.tokens.dev);
      const first = client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } }).catch((err: Error) => err);
      await pendingApprovals(t);
      const second = (await client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'z' } })) as CallToolResult;
      expect(second.isError).toBe(true);
      expect(textOf(second)).toMatch(/^Too many requests are waiting for approval/);
      await client.close();
      await first;
    } finally {
      await t.close();
    }
  });
});
