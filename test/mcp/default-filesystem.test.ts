import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { defaultToolgateFile } from '../../src/tools/tools.config.js';
import { startTestGateway, tempDir } from '../helpers.js';
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
      const requested = await approver.next((f) => f.type === 'approval.requested');
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
});
