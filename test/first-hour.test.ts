import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { firstRunTokensPath } from '../src/main.js';
import { CLI, spawnGateway, writeFixtureConfig, type ChildGateway } from './chaos/child-gateway.js';
import { api, eventually, ROOT, runCliSync, startTestGateway, tempDir, type TestGateway } from './helpers.js';
import { connectBridge, connectHttp } from './mcp/mcp-clients.js';
import { connectApprover } from './ws-client.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function dir() {
  const d = tempDir();
  cleanups.push(() => d.remove());
  return d.path;
}

async function child(env: Record<string, string>, cwd?: string): Promise<ChildGateway> {
  const g = await spawnGateway(env, 30_000, cwd);
  cleanups.push(async () => {
    g.child.kill('SIGTERM');
    const stopped = await Promise.race([g.exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (!stopped) g.killGroup();
  });
  return g;
}

function logLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A gateway's environment on a fresh database with the fixture upstream. */
function freshEnv(path: string): Record<string, string> {
  return { DATABASE_PATH: join(path, 'toolgate.db'), TOOLGATE_CONFIG: writeFixtureConfig(path, join(path, 'count')) };
}

describe('configuration errors', () => {
  it('gives a range error for an out-of-range PORT', () => {
    expect(() => loadConfig({ PORT: '99999' })).toThrow(/PORT: must be between 0 and 65535 \(got "99999"\)/);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT: must be a number/);
  });

  it('reads booleans case-insensitively and still refuses other words', () => {
    expect(loadConfig({ RBAC_ENABLED: 'TRUE', APPROVAL_ALLOW_SELF: 'Yes', TRUST_USER_HEADER: 'On' })).toMatchObject({ rbacEnabled: true, allowSelfApproval: true, trustUserHeader: true });
    expect(loadConfig({ RBAC_ENABLED: 'FALSE', APPROVAL_WORKFLOW_ENABLED: 'Off' })).toMatchObject({ rbacEnabled: false, approvalWorkflowEnabled: false });
    expect(loadConfig({ RBAC_ENABLED: '0', APPROVAL_WORKFLOW_ENABLED: 'no' })).toMatchObject({ rbacEnabled: false, approvalWorkflowEnabled: false });
    expect(() => loadConfig({ RBAC_ENABLED: 'maybe' })).toThrow(/RBAC_ENABLED: must be true or false/);
  });
});

describe('.env in the working directory', { tags: ['process'], timeout: 90_000 }, () => {
  it('is read by the database commands, with real environment variables winning', () => {
    const cwd = dir();
    writeFileSync(join(cwd, '.env'), '# from .env\nDATABASE_PATH=./from-dotenv/toolgate.db\n');
    const read = runCliSync(['db', 'migrate'], {}, { cwd, unset: ['DATABASE_PATH'] });
    expect(read.status).toBe(0);
    expect(read.stdout).toContain('migrated ./from-dotenv/toolgate.db');
    expect(existsSync(join(cwd, 'from-dotenv', 'toolgate.db'))).toBe(true);
    const real = runCliSync(['db', 'migrate'], { DATABASE_PATH: join(cwd, 'real.db') }, { cwd });
    expect(real.stdout).toContain(`migrated ${join(cwd, 'real.db')}`);
  });

  it('is named when a value it set stops `toolgate serve`', () => {
    const cwd = dir();
    writeFileSync(join(cwd, '.env'), 'PORT=99999\n');
    const res = runCliSync(['serve'], {}, { cwd, unset: ['PORT'] });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('PORT: must be between 0 and 65535 (got "99999")');
    expect(res.stderr).toContain(`${join(cwd, '.env')}, which set PORT`);
  });

  it('is read by `toolgate serve`, which logs the file and what the environment overrode', async () => {
    const cwd = dir();
    const fixture = writeFixtureConfig(cwd, join(cwd, 'count'));
    // PORT=1 from the file would fail: the environment's PORT=0 wins.
    writeFileSync(join(cwd, '.env'), `PORT=1\nDATABASE_PATH=./state/gate.db\nTOOLGATE_CONFIG=${fixture}\nAPPROVAL_TIMEOUT=42\n`);
    const g = await child({}, cwd);
    expect(existsSync(join(cwd, 'state', 'gate.db'))).toBe(true);
    const line = logLines(g.stdout()).find((l) => l.msg === 'read .env');
    expect(line).toMatchObject({ file: join(cwd, '.env'), overriddenByEnvironment: ['PORT'] });
    expect(line!.applied).toEqual(expect.arrayContaining(['DATABASE_PATH', 'TOOLGATE_CONFIG', 'APPROVAL_TIMEOUT']));
    expect(JSON.stringify(line)).not.toContain('gate.db'); // names only: values may be secrets
  });
});

describe('a busy port', { tags: ['process'], timeout: 90_000 }, () => {
  it('answers one line and exit 1, and leaves a fresh database unseeded so the first-run tokens are not used up', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const port = (blocker.address() as AddressInfo).port;
    const path = dir();
    const env = freshEnv(path);

    const proc = spawn(process.execPath, [CLI, 'serve'], { cwd: ROOT, env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toBe(`toolgate: port ${port} is in use (set PORT)\n`);
    expect(stdout).not.toContain('tg_');
    expect(existsSync(firstRunTokensPath(env.DATABASE_PATH!))).toBe(false);

    const g = await child(env);
    expect(Object.keys(g.tokens).sort()).toEqual(['admin_user', 'dev_user', 'guest_user']);
    expect((await api(g.url, 'GET', '/tools', { token: g.tokens.dev_user })).status).toBe(200);
  });
});

describe('first-run tokens and later starts', { tags: ['process'], timeout: 90_000 }, () => {
  it('keeps the first-run tokens out of the log stream: without a terminal they go to a 0600 file whose path is logged', async () => {
    const path = dir();
    const env = freshEnv(path);
    const g = await child(env);
    expect(g.tokens.admin_user).toMatch(/^tg_/);
    expect(g.tokensFileMode).toBe(0o600);
    expect(g.stdout()).not.toContain('tg_');
    expect(g.stderr()).not.toContain('tg_');
    expect(logLines(g.stdout()).find((l) => typeof l.file === 'string' && (l.file as string).endsWith('first-run-tokens.txt'))).toMatchObject({
      file: firstRunTokensPath(env.DATABASE_PATH!),
    });
    expect((await api(g.url, 'GET', '/tools', { token: g.tokens.admin_user })).status).toBe(200);
  });

  it('prints them on a terminal instead, and writes no file', async () => {
    const path = dir();
    const env = freshEnv(path);
    const proc = spawn('script', ['-qfec', `${process.execPath} ${CLI} serve`, '/dev/null'], {
      cwd: ROOT,
      env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', CI: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    cleanups.push(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    await eventually(() => out.includes('toolgate listening'), 30_000);
    expect(out).toContain('First start: the database was seeded');
    expect(out).toMatch(/admin_user\s+\(admin\s*\)\s+tg_/);
    expect(existsSync(firstRunTokensPath(env.DATABASE_PATH!))).toBe(false);
  });

  it('says on later starts how to issue a token, and warns while one approver cannot approve their own calls', async () => {
    const path = dir();
    const env = freshEnv(path);
    const first = await child(env);
    expect(first.stdout()).not.toContain('toolgate users token <user>');
    first.child.kill('SIGTERM');
    await first.exited;

    const second = await child(env);
    const lines = logLines(second.stdout());
    expect(lines.some((l) => String(l.msg).includes('`toolgate users token <user>`'))).toBe(true);
    const warning = lines.find((l) => l.level === 40 && String(l.msg).includes('only approver'));
    expect(warning).toMatchObject({ approver: 'admin_user' });
    expect(String(warning!.msg)).toContain('can never be approved');
    second.child.kill('SIGTERM');
    await second.exited;

    expect(runCliSync(['users', 'add', 'alice', '--role', 'admin'], { DATABASE_PATH: env.DATABASE_PATH! }).status).toBe(0);
    const third = await child(env);
    expect(third.stdout()).not.toContain('only approver');
  }, 120_000);
});

describe('toolgate db seed --reset and users list', { tags: ['process'] }, () => {
  it('says which users --reset would delete and does nothing without --yes, pointing at `users token`', () => {
    const path = dir();
    const env = { DATABASE_PATH: join(path, 'toolgate.db') };
    expect(runCliSync(['db', 'seed'], env).status).toBe(0);
    const added = runCliSync(['users', 'add', 'ci-bot', '--role', 'developer'], env);
    expect(added.status).toBe(0);

    const refused = runCliSync(['db', 'seed', '--reset'], env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('4 users (admin_user, ci-bot, dev_user, guest_user)');
    expect(refused.stderr).toContain('--yes');
    expect(refused.stderr).toContain('toolgate users token <user>');
    expect(refused.stderr.trimEnd().split('\n')).toHaveLength(2); // real lines, not an escaped "\n"
    expect(refused.stdout).not.toContain('tg_');
    expect(runCliSync(['users', 'list'], env).stdout).toMatch(/ci-bot/);

    const done = runCliSync(['db', 'seed', '--reset', '--yes'], env);
    expect(done.status).toBe(0);
    expect(done.stdout).toContain('deleting 4 users (admin_user, ci-bot, dev_user, guest_user)');
    expect(done.stdout).toMatch(/admin_user\s+admin\s+tg_/);
    expect(runCliSync(['users', 'list'], env).stdout).not.toMatch(/ci-bot/);
  }, 90_000);

  it('counts each user\u2019s live tokens in `users list`', () => {
    const path = dir();
    const env = { DATABASE_PATH: join(path, 'toolgate.db') };
    runCliSync(['db', 'seed'], env);
    runCliSync(['users', 'add', 'ci-bot', '--role', 'developer'], env);
    runCliSync(['users', 'token', 'ci-bot'], env);
    runCliSync(['users', 'token', 'ci-bot'], env);
    const json = JSON.parse(runCliSync(['users', 'list', '--json'], env).stdout) as { id: string; tokens: number }[];
    expect(json.find((u) => u.id === 'ci-bot')?.tokens).toBe(3);
    expect(json.find((u) => u.id === 'dev_user')?.tokens).toBe(1);
    runCliSync(['users', 'token', 'ci-bot', '--revoke-others'], env);
    const list = runCliSync(['users', 'list'], env).stdout;
    expect(list).toMatch(/^ci-bot\s.*tokens=1$/m);
    expect(list).toMatch(/^admin_user\s.*tokens=1$/m);
  }, 90_000);
});

describe('--help', { tags: ['process'] }, () => {
  it('lists the options and environment variables of serve, mcp, approve and approvals, and warns about --token in ps', () => {
    const serve = runCliSync(['serve', '--help'], {});
    expect(serve.status).toBe(0);
    for (const name of ['PORT', 'DATABASE_PATH', 'RBAC_ENABLED', 'APPROVAL_TIMEOUT', 'METRICS_TOKEN', '.env']) expect(serve.stdout).toContain(name);
    for (const command of [['mcp'], ['approve'], ['approvals'], ['approvals', 'approve']]) {
      const help = runCliSync([...command, '--help'], {});
      expect(help.status).toBe(0);
      for (const text of ['--server', '--token', 'TOOLGATE_URL', 'TOOLGATE_TOKEN', '`ps`']) expect(help.stdout).toContain(text);
    }
    expect(runCliSync(['approve', '--help'], {}).stdout).toContain('--plain');
  }, 90_000);
});

describe('MCP error messages', { tags: ['process'] }, () => {
  it('carry their "MCP error <code>:" prefix once, over Streamable HTTP and through the stdio bridge', async () => {
    const t = await startTestGateway();
    cleanups.push(() => t.close());
    for (const connect of [connectHttp, connectBridge]) {
      const client = await connect(t.url, t.tokens.dev);
      cleanups.push(() => client.close());
      const err = await client.callTool({ name: 'no_such_tool', arguments: {} }).then(
        () => undefined,
        (e: Error & { code?: number }) => e,
      );
      expect(err?.code).toBe(-32602);
      expect(err?.message).toMatch(/^MCP error -32602: /);
      expect(err?.message.match(/MCP error/g)).toHaveLength(1);
    }
  });
});

describe('request log and metrics', () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    return { lines, logger: createLogger('info', { destination, pretty: false }) };
  }

  async function gateway(logger: ReturnType<typeof createLogger>): Promise<TestGateway> {
    const t = await startTestGateway({ logger });
    cleanups.push(() => t.close());
    return t;
  }

  it('include the approval wait in the duration of a POST /mcp call that waited', async () => {
    const { lines, logger } = capture();
    const t = await gateway(logger);
    const dev = await connectHttp(t.url, t.tokens.dev);
    cleanups.push(() => dev.close());
    const call = dev.callTool({ name: 'write_file', arguments: { path: 'x', content: 'abc' } }, CallToolResultSchema);
    const pending = await eventually(async () => (await api(t.url, 'GET', '/api/approvals/pending', { token: t.tokens.admin })).body.pending_approvals[0]);
    const waitMs = 600;
    await new Promise((r) => setTimeout(r, waitMs));
    expect((await api(t.url, 'POST', `/api/approvals/${pending.id}/approve`, { token: t.tokens.admin, body: { reason: 'ok' } })).status).toBe(200);
    expect((await call).isError).toBeFalsy();

    const mcpLines = await eventually(() => {
      const found = lines.filter((l) => l.msg === 'request' && l.route === '/mcp' && l.method === 'POST');
      return found.some((l) => (l.durationMs as number) >= waitMs) ? found : undefined;
    });
    expect(Math.max(...mcpLines.map((l) => l.durationMs as number))).toBeGreaterThanOrEqual(waitMs);

    const text = (await api(t.url, 'GET', '/metrics')).body as string;
    const series = (suffix: string) => Number(text.split('\n').find((l) => l.startsWith(`toolgate_http_request_duration_seconds${suffix}`))!.split(' ').at(-1));
    const under = series('_bucket{le="0.5",method="POST",route="/mcp"}');
    const all = series('_count{method="POST",route="/mcp"}');
    expect(all - under).toBeGreaterThanOrEqual(1); // the waiting call took longer than 0.5 s
  });

  it('record the approver WebSocket upgrade as a 101 with its user, for header and first-frame logins', async () => {
    const { lines, logger } = capture();
    const t = await gateway(logger);
    const byHeader = await connectApprover(t.wsUrl, t.tokens.admin);
    cleanups.push(() => byHeader.close());
    await byHeader.seen((f) => f.type === 'hello');
    const byFrame = await connectApprover(t.wsUrl);
    cleanups.push(() => byFrame.close());
    byFrame.send({ type: 'auth', token: t.tokens.admin });
    await byFrame.seen((f) => f.type === 'hello');

    const upgrades = await eventually(() => {
      const found = lines.filter((l) => l.msg === 'request' && l.route === '/ws/approvals');
      return found.length === 2 ? found : undefined;
    });
    for (const line of upgrades) expect(line).toMatchObject({ method: 'GET', status: 101, userId: 'admin_user' });
    const text = (await api(t.url, 'GET', '/metrics')).body as string;
    expect(text).toContain('toolgate_http_requests_total{method="GET",route="/ws/approvals",status="101"} 2');
  });
});
