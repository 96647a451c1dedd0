import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { defaultToolgateFile } from '../../src/tools/tools.config.js';
import { scrubPaths } from '../../src/tools/upstreams.js';
import { api, ROOT, startTestGateway, tempDir } from '../helpers.js';
import { connectHttp, textOf } from '../mcp/mcp-clients.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;

function cli(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['cli/toolgate.js', ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
}

describe('private files', () => {
  it('creates the data folder 0700 and the database, its -wal and -shm files and backups 0600, whatever the umask', async () => {
    const root = tempDir();
    const dataDir = join(root.path, 'fresh', 'data');
    const dbPath = join(dataDir, 'toolgate.db');
    const previous = process.umask(0o022);
    const t = await startTestGateway({ dir: root.path, dbPath });
    try {
      expect(modeOf(dataDir)).toBe(0o700);
      expect(modeOf(join(root.path, 'fresh'))).toBe(0o700);
      for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
        expect(existsSync(file)).toBe(true);
        expect(modeOf(file), file).toBe(0o600);
      }
      const backup = join(root.path, 'backup.db');
      const result = cli(['db', 'backup', backup], { DATABASE_PATH: dbPath });
      expect(result.status, result.stderr).toBe(0);
      expect(modeOf(backup)).toBe(0o600);
    } finally {
      process.umask(previous);
      await t.close();
      root.remove();
    }
  });
});

describe('upstream errors shown to callers', () => {
  it("keep the filesystem server's absolute paths out of HTTP and MCP answers, and in the server log", async () => {
    const workspace = tempDir('toolgate-workspace-');
    const logged = new PassThrough();
    let log = '';
    logged.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const file = { ...defaultToolgateFile(workspace.path), policy: [{ tool: 'read_text_file', sensitivity: 'LOW' as const, roles: ['guest', 'developer', 'admin'] }] };
    const t = await startTestGateway({ file, logger: createLogger('info', { destination: logged }) });
    const client = await connectHttp(t.url, t.tokens.dev);
    try {
      const outside = '/etc/hostname';
      const http = await api(t.url, 'POST', '/tools/read_text_file/call', { token: t.tokens.dev, body: { arguments: { path: outside } } });
      expect(http.status).toBe(200);
      expect(http.body.result.isError).toBe(true);
      const httpText = JSON.stringify(http.body);
      expect(httpText).toContain('Access denied');
      expect(httpText).toContain('[path]');
      expect(httpText).not.toContain(workspace.path);

      const missing = join(workspace.path, 'nope.txt');
      const mcp = (await client.callTool({ name: 'read_text_file', arguments: { path: missing } })) as CallToolResult;
      expect(mcp.isError).toBe(true);
      expect(textOf(mcp)).toContain('[path]');
      expect(JSON.stringify(mcp)).not.toContain(workspace.path);

      await new Promise((r) => setTimeout(r, 50));
      expect(log).toContain(`not in ${workspace.path}`);
      expect(log).toContain(missing);
    } finally {
      await client.close();
      await t.close();
      workspace.remove();
    }
  });

  it('scrubs POSIX, Windows, UNC and file: paths and leaves URLs and relative paths', () => {
    expect(scrubPaths('spawn /opt/toolgate/node_modules/.bin/server ENOENT')).toBe('spawn [path] ENOENT');
    expect(scrubPaths("ENOENT: no such file or directory, open '/home/x/data/workspace/a.txt'")).toBe("ENOENT: no such file or directory, open '[path]'");
    expect(scrubPaths('C:\\Users\\bob\\server.js and C:/tools/x.exe and \\\\files\\share\\f.txt failed')).toBe('[path] and [path] and [path] failed');
    expect(scrubPaths('cannot read file:///srv/data/x')).toBe('cannot read [path]');
    const kept = 'fetch http://127.0.0.1:9000/mcp failed for ./data/x and a/b';
    expect(scrubPaths(kept)).toBe(kept);
  });
});
