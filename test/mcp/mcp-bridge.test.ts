// @module-tag process
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { api, CLI, eventually, pendingApprovals, ROOT, startTestGateway, tempDir, type TestGateway } from '../helpers.js';
import { connectBridge, gateScenarios, textOf } from './mcp-clients.js';

describe('MCP through the stdio bridge (toolgate mcp as a child process)', () => {
  gateScenarios((url, token) => connectBridge(url, token));
});

describe('toolgate mcp', () => {
  it('writes nothing but protocol to stdout, and exits 1 with a message on stderr when the token is bad', async () => {
    const t = await startTestGateway();
    try {
      const child = spawn(process.execPath, [CLI, 'mcp', '--server', t.url, '--token', 'wrong'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toContain('invalid or revoked token');
    } finally {
      await t.close();
    }
  });

  it('cancels the waiting request when the client closes the bridge', async () => {
    const t = await startTestGateway();
    try {
      const client = await connectBridge(t.url, t.tokens.dev);
      const call = client.callTool({ name: 'write_file', arguments: { path: 'x', content: 'y' } }).catch((err: Error) => err);
      const [pending] = await pendingApprovals(t);
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

  it('opens a new session when the gateway restarted and forgot the old one', async () => {
    const dir = tempDir();
    const first = await startTestGateway({ dir: dir.path });
    let second: TestGateway | undefined;
    const stderr: string[] = [];
    try {
      const client = await connectBridge(first.url, first.tokens.guest, stderr);
      expect(textOf((await client.callTool({ name: 'echo', arguments: { message: 'one' } })) as CallToolResult)).toBe('{"message":"one"}');
      await first.close();
      second = await startTestGateway({ dir: dir.path, env: { PORT: String(first.gateway.port) } });
      expect(textOf((await client.callTool({ name: 'echo', arguments: { message: 'two' } })) as CallToolResult)).toBe('{"message":"two"}');
      expect(stderr.join('')).toContain('opening a new one');
      await client.close();
    } finally {
      await first.close();
      await second?.close();
      dir.remove();
    }
  });
});
