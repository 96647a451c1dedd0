// @module-tag process
import { execFileSync } from 'node:child_process';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ToolgateFile } from '../../src/tools/gateway-file.js';
import { startHttpFixture, type HttpFixture } from '../fixtures/mcp-http-server.js';
import { api, eventually, FIXTURE_SERVER, startTestGateway, type TestGateway } from '../helpers.js';
import { connectBridge, connectHttp, textOf } from './mcp-clients.js';

/** The stdio fixture as `fs.*` and the Streamable HTTP fixture as `git.*` (both trusted for their annotations), with a policy that overrides some of them. */
function twoUpstreams(httpUrl: string): ToolgateFile {
  return {
    upstreams: [
      { name: 'fs', command: process.execPath, args: ['--import', 'tsx', FIXTURE_SERVER], prefix: 'fs.', callTimeoutMs: 30_000, trustAnnotations: true },
      { name: 'git', url: httpUrl, prefix: 'git.', callTimeoutMs: 30_000, trustAnnotations: true },
    ],
    policy: [
      { tool: 'git.st*', sensitivity: 'MEDIUM' },
      { tool: 'git.push', sensitivity: 'CRITICAL' },
    ],
    defaults: {},
  };
}

const sensitivityOf = (tools: Tool[], name: string) => tools.find((x) => x.name === name)?._meta?.['toolgate/sensitivity'];

describe('several upstreams behind the MCP front door', () => {
  let http: HttpFixture;
  let t: TestGateway;
  const clients: Client[] = [];
  const open = async (client: Promise<Client>) => {
    clients.push(await client);
    return clients.at(-1)!;
  };

  beforeEach(async () => {
    http = await startHttpFixture();
    t = await startTestGateway({ file: twoUpstreams(http.url), upstream: 'stdio', mcpProgressIntervalMs: 100 });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
    await t.close();
    await http.close();
  });

  it('takes sensitivity from toolgate.json first (exact name over glob), then from the tool’s annotations', async () => {
    const admin = await open(connectHttp(t.url, t.tokens.admin));
    const { tools } = await admin.listTools();
    expect(sensitivityOf(tools, 'fs.echo')).toBe('LOW'); // readOnlyHint: true
    expect(sensitivityOf(tools, 'fs.medium_tool')).toBe('MEDIUM'); // destructiveHint: false
    expect(sensitivityOf(tools, 'fs.slow')).toBe('HIGH'); // destructiveHint: true
    expect(sensitivityOf(tools, 'fs.list_files')).toBe('HIGH'); // no annotations, and the catalog names only "list_files"
    expect(sensitivityOf(tools, 'git.status')).toBe('MEDIUM'); // the glob beats readOnlyHint
    expect(sensitivityOf(tools, 'git.push')).toBe('CRITICAL'); // the exact name beats the glob
    expect(sensitivityOf(tools, 'git.add_tool')).toBe('LOW');

    const dev = await open(connectHttp(t.url, t.tokens.dev));
    const devNames = (await dev.listTools()).tools.map((x) => x.name);
    expect(devNames).toContain('git.status');
    expect(devNames).not.toContain('git.push'); // CRITICAL: admin only by default
  });

  it('calls tools on the stdio and the Streamable HTTP upstream through their prefixes', async () => {
    const dev = await open(connectHttp(t.url, t.tokens.dev));
    expect(textOf((await dev.callTool({ name: 'fs.echo', arguments: { message: 'x' } })) as CallToolResult)).toBe('{"message":"x"}');
    expect(textOf((await dev.callTool({ name: 'git.status', arguments: {} })) as CallToolResult)).toBe('clean');
  });

  it('picks up an upstream’s list_changed and tells MCP clients, over HTTP and through the bridge', async () => {
    const dev = await open(connectHttp(t.url, t.tokens.dev));
    const bridged = await open(connectBridge(t.url, t.tokens.dev));
    let heard = 0;
    let bridgeHeard = 0;
    dev.setNotificationHandler(ToolListChangedNotificationSchema, async () => void heard++);
    bridged.setNotificationHandler(ToolListChangedNotificationSchema, async () => void bridgeHeard++);
    expect((await dev.listTools()).tools.map((x) => x.name)).not.toContain('git.added');
    await bridged.listTools(); // the bridge's own session is open and listening

    expect(textOf((await dev.callTool({ name: 'git.add_tool', arguments: {} })) as CallToolResult)).toBe('added');
    await eventually(() => heard > 0 && bridgeHeard > 0);
    const { tools } = await dev.listTools();
    expect(sensitivityOf(tools, 'git.added')).toBe('LOW');
    expect(textOf((await bridged.callTool({ name: 'git.added', arguments: {} })) as CallToolResult)).toBe('added ok');
  });

  it('picks up list_changed from the stdio upstream too', async () => {
    const admin = await open(connectHttp(t.url, t.tokens.admin));
    let heard = 0;
    admin.setNotificationHandler(ToolListChangedNotificationSchema, async () => void heard++);
    // The fixture registers late_tool on SIGUSR2; it is this process's only child running it.
    const pid = Number(execFileSync('pgrep', ['-P', String(process.pid), '-f', 'mcp-server.ts']).toString().trim());
    process.kill(pid, 'SIGUSR2');
    await eventually(() => heard > 0);
    expect(sensitivityOf((await admin.listTools()).tools, 'fs.late_tool')).toBe('LOW');
  });

  it('fails the calls in flight on an upstream that dies with a clear upstream_error, then restarts it', async () => {
    const started = Date.now();
    const res = await api(t.url, 'POST', '/tools/fs.crash/call', { token: t.tokens.dev, body: { arguments: {} } });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('upstream_error');
    expect(res.body.error.message).toMatch(/upstream "fs"/);
    expect(Date.now() - started).toBeLessThan(5000);

    const dev = await open(connectHttp(t.url, t.tokens.dev));
    await eventually(async () => !((await dev.callTool({ name: 'fs.echo', arguments: {} })) as CallToolResult).isError, 10_000, 100);
    const crashed = (await dev.callTool({ name: 'fs.crash', arguments: {} })) as CallToolResult;
    expect(crashed.isError).toBe(true);
    expect(textOf(crashed)).toMatch(/^Upstream error: upstream "fs" failed/);
    expect(crashed._meta?.['toolgate/error']).toMatchObject({ code: 'upstream_error' });
    await eventually(async () => !((await dev.callTool({ name: 'fs.echo', arguments: {} })) as CallToolResult).isError, 10_000, 100);
    // The other upstream never noticed.
    expect(textOf((await dev.callTool({ name: 'git.status', arguments: {} })) as CallToolResult)).toBe('clean');
  });

  it('fails a call to a Streamable HTTP upstream that went away with upstream_error instead of hanging, and reconnects when it is back', async () => {
    const dev = await open(connectHttp(t.url, t.tokens.dev));
    const inFlight = dev.callTool({ name: 'git.slow', arguments: { ms: 10_000 } });
    await new Promise((r) => setTimeout(r, 200));
    await http.close();
    const result = (await inFlight) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/^Upstream error: upstream "git" failed/);
    const after = (await dev.callTool({ name: 'git.status', arguments: {} })) as CallToolResult;
    expect(after.isError).toBe(true);
    expect(textOf(after)).toMatch(/^Upstream error: upstream "git"/);

    http = await startHttpFixture(Number(new URL(http.url).port));
    await eventually(async () => !((await dev.callTool({ name: 'git.status', arguments: {} })) as CallToolResult).isError, 10_000, 100);
  });
});
