import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, type CallToolResult, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { verifyReceipt } from '../../src/receipts/receipts.js';
import { api, CLI, eventually, ROOT, startTestGateway, type TestGateway } from '../helpers.js';
import { connectApprover, type TestApprover } from '../ws-client.js';

export const PROGRESS_MESSAGE = /^waiting for approval \(request ([0-9a-f]{8}), (\d+h)?(\d+m)?\d+s left\)$/;

/** The SDK's own client over Streamable HTTP, with the caller's bearer token. */
export async function connectHttp(url: string, token: string | undefined): Promise<Client> {
  const client = new Client({ name: 'toolgate-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', url), {
    requestInit: { headers: token ? { authorization: `Bearer ${token}` } : {} },
  });
  await client.connect(transport);
  return client;
}

/** The SDK's own client over stdio to `toolgate mcp`, a real child process. */
export async function connectBridge(url: string, token: string, stderr: string[] = []): Promise<Client> {
  const client = new Client({ name: 'toolgate-test', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp', '--server', url, '--token', token],
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), TOOLGATE_URL: '', TOOLGATE_TOKEN: '' },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  await client.connect(transport);
  return client;
}

export function textOf(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
}

export type Connect = (url: string, token: string) => Promise<Client>;

/**
 * The front door's behaviour as an MCP client sees it; run over Streamable HTTP and through the
 * stdio bridge, so both prove the same contract.
 */
export function gateScenarios(connect: Connect) {
  let t: TestGateway;
  const clients: Client[] = [];
  let approver: TestApprover | undefined;
  const open = async (token: string) => {
    const client = await connect(t.url, token);
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    t = await startTestGateway({ mcpProgressIntervalMs: 100 });
  });
  afterEach(async () => {
    await approver?.close();
    approver = undefined;
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
    await t.close();
  });

  it('lists exactly the caller’s tools: a developer sees more than a guest, with schemas, annotations and sensitivity', async () => {
    const dev = await open(t.tokens.dev);
    const guest = await open(t.tokens.guest);
    const devTools = (await dev.listTools()).tools;
    const guestTools = (await guest.listTools()).tools;
    const devNames = devTools.map((x) => x.name).sort();
    const guestNames = guestTools.map((x) => x.name).sort();
    expect(devNames).toEqual(expect.arrayContaining(['echo', 'list_files', 'write_file', 'execute_bash', 'slow']));
    expect(guestNames).toEqual(expect.arrayContaining(['echo', 'list_files']));
    for (const hidden of ['write_file', 'execute_bash', 'slow', 'git_commit']) expect(guestNames).not.toContain(hidden);
    expect(devNames).not.toContain('git_commit'); // admin only in the catalog
    expect(guestNames.every((n) => devNames.includes(n))).toBe(true);

    const writeFile = devTools.find((x) => x.name === 'write_file')!;
    expect(writeFile._meta).toEqual({ 'toolgate/sensitivity': 'HIGH', 'toolgate/requiresApproval': true });
    expect(writeFile.description).toContain('sensitivity HIGH');
    expect(writeFile.inputSchema).toMatchObject({ type: 'object', properties: { path: { type: 'string' }, content: { type: 'string' } }, required: ['path', 'content'] });
    const echo = guestTools.find((x) => x.name === 'echo')!;
    expect(echo._meta).toEqual({ 'toolgate/sensitivity': 'LOW', 'toolgate/requiresApproval': false });
    expect(echo.annotations).toMatchObject({ readOnlyHint: true });
  });

  it('runs a LOW tool at once', async () => {
    const guest = await open(t.tokens.guest);
    const result = (await guest.callTool({ name: 'echo', arguments: { message: 'hi' } })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('{"message":"hi"}');
  });

  it('holds a HIGH tool until an approver approves over the WebSocket, sending progress while it waits', async () => {
    approver = await connectApprover(t.wsUrl, t.tokens.admin);
    await approver.seen((f) => f.type === 'hello');
    const dev = await open(t.tokens.dev);
    const progress: Progress[] = [];
    const call = dev.callTool({ name: 'write_file', arguments: { path: 'notes.txt', content: 'abc' } }, CallToolResultSchema, {
      onprogress: (p) => progress.push(p),
      resetTimeoutOnProgress: true,
    });
    const requested = await approver.seen((f) => f.type === 'approval.requested');
    expect(requested.approval).toMatchObject({ tool: 'write_file', sensitivity: 'HIGH', requester: { id: 'dev_user' } });
    await eventually(() => progress.length >= 3);
    approver.send({ type: 'decide', ref: '1', id: requested.approval.shortId, decision: 'approve', reason: 'ok' });
    const result = (await call) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('wrote 3 bytes to notes.txt');
    expect(result._meta?.['toolgate/approval']).toMatchObject({ id: requested.approval.id, status: 'approved', execution: 'succeeded' });
    const jwks = (await api(t.url, 'GET', '/.well-known/jwks.json')).body;
    expect(await verifyReceipt(result._meta?.['toolgate/receipt'] as string, jwks, { arguments: { path: 'notes.txt', content: 'abc' } })).toMatchObject({ ok: true, claims: { jti: requested.approval.id } });
    for (const p of progress) expect(p.message).toMatch(PROGRESS_MESSAGE);
    expect(PROGRESS_MESSAGE.exec(progress[0]!.message!)![1]).toBe(requested.approval.shortId);
    expect(progress.map((p) => p.progress)).toEqual([...progress.map((p) => p.progress)].sort((a, b) => a - b));
  });

  it('returns isError naming the rejection, its reason and the request id when the approver rejects', async () => {
    approver = await connectApprover(t.wsUrl, t.tokens.admin);
    const dev = await open(t.tokens.dev);
    const call = dev.callTool({ name: 'execute_bash', arguments: { command: 'rm -rf /' } });
    const requested = await approver.seen((f) => f.type === 'approval.requested');
    approver.send({ type: 'decide', ref: '1', id: requested.approval.shortId, decision: 'reject', reason: 'not on my watch' });
    const result = (await call) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^Rejected: /);
    expect(textOf(result)).toContain('not on my watch');
    expect(textOf(result)).toContain(requested.approval.shortId);
    expect(textOf(result)).toContain('admin_user');
    expect(result._meta?.['toolgate/error']).toMatchObject({ code: 'approval_rejected' });
  });

  it('answers a tool the role may not call with isError permission denied, and an unknown tool with a JSON-RPC error', async () => {
    const guest = await open(t.tokens.guest);
    const denied = (await guest.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } })) as CallToolResult;
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toMatch(/^Permission denied: role "guest" may not call "write_file"/);
    await expect(guest.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toMatchObject({ code: -32602 });
  });
}
