import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { firstRunTokensPath } from '../../src/main.js';
import { CLI, FIXTURE_SERVER, ROOT } from '../helpers.js';

export { CLI };

/** toolgate.json for the fixture upstream, counting executions in `counterFile`. */
export function writeFixtureConfig(dir: string, counterFile: string): string {
  const path = join(dir, 'toolgate.json');
  writeFileSync(
    path,
    JSON.stringify({
      upstreams: [
        { name: 'fixture', command: process.execPath, args: ['--import', 'tsx', FIXTURE_SERVER], cwd: ROOT, env: { FIXTURE_COUNTER_FILE: counterFile }, callTimeoutMs: 60_000 },
      ],
    }),
  );
  return path;
}

export interface ChildGateway {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  /** Seeded tokens by user id (first start only). */
  tokens: Record<string, string>;
  /** The permission bits of the first-run tokens file, when there was one. */
  tokensFileMode: number | undefined;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to the whole process group (the gateway and its upstreams), for cleanup. */
  killGroup(): void;
}

/**
 * `node cli/toolgate.js serve` as a child process on PORT=0; its URL comes from the
 * "toolgate listening" log line. Its stdout is no terminal, so a first start leaves the seeded
 * tokens in first-run-tokens.txt beside DATABASE_PATH: they are read from there and the file is
 * deleted, as an operator would.
 */
export async function spawnGateway(env: Record<string, string>, timeoutMs = 20_000, cwd = ROOT): Promise<ChildGateway> {
  const child = spawn(process.execPath, [CLI, 'serve'], {
    cwd,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', CI: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (!url) {
    const line = out.split('\n').find((l) => l.includes('"toolgate listening"'));
    if (line) url = JSON.parse(line).url as string;
    else if (child.exitCode !== null || Date.now() > deadline) {
      killGroup();
      throw new Error(`gateway did not start (exit ${child.exitCode}):\n${out}\n${err}`);
    } else await new Promise((r) => setTimeout(r, 25));
  }
  const tokens: Record<string, string> = {};
  const tokensFile = firstRunTokensPath(env.DATABASE_PATH ?? join(cwd, 'data', 'toolgate.db'));
  let tokensFileMode: number | undefined;
  if (existsSync(tokensFile)) {
    tokensFileMode = statSync(tokensFile).mode & 0o777;
    for (const m of readFileSync(tokensFile, 'utf8').matchAll(/^\s+(\w+)\s+\(\w+\s*\)\s+(tg_\S+)$/gm)) tokens[m[1]!] = m[2]!;
    rmSync(tokensFile);
  }
  return { child, url, wsUrl: `${url.replace(/^http/, 'ws')}/ws/approvals`, tokens, tokensFileMode, stdout: () => out, stderr: () => err, exited, killGroup };
}

export function counterLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}
