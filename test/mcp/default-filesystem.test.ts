// @module-tag process
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { SEED_CATALOG } from '../../src/db/seed.js';
import { defaultToolgateFile } from '../../src/tools/gateway-file.js';
import { api, startTestGateway, tempDir } from '../helpers.js';
import { connectApprover } from '../ws-client.js';
import { connectHttp, textOf } from './mcp-clients.js';

describe('the default start: the official filesystem MCP server behind the gate', () => {
  it('reads and lists at once, and writes a file only after an approver approves', async () => {
    const workspace = tempDir('toolgate-workspace-');
    writeFileSync(join(workspace.path, 'hello.txt'), 'hello from the workspace\n');
    const t = await startTestGateway({ file: defaultToolgateFile(workspace.path) });
    const approver = await connectApprover(t.wsUrl, t.tokens.admin);
    const client = await connectHttp(t.url, t.tokens.dev);
    try {
      const tools = (await client.listTools()).tools;
      const sensitivity = (name: string) => tools.find((x) => x.name === name)?._meta?.['toolgate/sensitivity'];
      expect(sensitivity('read_text_file')).toBe('LOW');
      expect(sensitivity('list_directory')).toBe('LOW');
      expect(sensitivity('write_file')).toBe('HIGH');

      const read = (await client.callTool({ name: 'read_text_file', arguments: { path: join(workspace.path, 'hello.txt') } })) as CallToolResult;
      expect(read.isError).toBeFalsy();
      expect(textOf(read)).toContain('hello from the workspace');
      const listed = (await client.callTool({ name: 'list_directory', arguments: { path: workspace.path } })) as CallToolResult;
      expect(textOf(listed)).toContain('hello.txt');

      const target = join(workspace.path, 'approved.txt');
      const write = client.callTool({ name: 'write_file', arguments: { path: target, content: 'written after approval' } });
      const requested = await approver.seen((f) => f.type === 'approval.requested');
      expect(requested.approval).toMatchObject({ tool: 'write_file', sensitivity: 'HIGH', requester: { id: 'dev_user' } });
      expect(existsSync(target)).toBe(false);
      approver.send({ type: 'decide', ref: '1', id: requested.approval.shortId, decision: 'approve', reason: 'ok' });
      const written = (await write) as CallToolResult;
      expect(written.isError).toBeFalsy();
      expect(readFileSync(target, 'utf8')).toBe('written after approval');
    } finally {
      await client.close();
      await approver.close();
      await t.close();
      workspace.remove();
    }
  });

  it('names every tool of the server in the seeded catalog: its writes, create_directory and move_file included, wait for approval', async () => {
    const workspace = tempDir('toolgate-workspace-');
    const t = await startTestGateway({ file: defaultToolgateFile(workspace.path) });
    try {
      const res = await api(t.url, 'GET', '/tools', { token: t.tokens.admin });
      const tools = res.body.tools as { name: string; sensitivity: string; requiresApproval: boolean }[];
      expect(tools.length).toBeGreaterThanOrEqual(14);
      // Nothing is left to the server's own annotations (it calls create_directory non-destructive).
      for (const tool of tools) expect(SEED_CATALOG.find((e) => e.tool === tool.name)?.sensitivity, tool.name).toBe(tool.sensitivity);
      const needsApproval = tools.filter((x) => x.requiresApproval).map((x) => x.name).sort();
      expect(needsApproval).toEqual(['create_directory', 'edit_file', 'move_file', 'write_file']);

      const dir = join(workspace.path, 'made-by-agent');
      const call = await api(t.url, 'POST', '/tools/create_directory/call', { token: t.tokens.dev, body: { arguments: { path: dir } }, headers: { prefer: 'respond-async' } });
      expect(call.status).toBe(202);
      expect(call.body.approval).toMatchObject({ tool: 'create_directory', sensitivity: 'HIGH', status: 'pending' });
      expect(existsSync(dir)).toBe(false);
      const guest = await api(t.url, 'GET', '/tools', { token: t.tokens.guest });
      expect(guest.body.tools.map((x: { name: string }) => x.name)).not.toContain('move_file');
    } finally {
      await t.close();
      workspace.remove();
    }
  });
});
