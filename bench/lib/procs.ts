import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The servers under test run compiled (`tsc`), as the container runs the gateway, not under tsx. */
const builtChildren = (root: string) => join(root, 'bench', '.build', 'bench', 'children');

/**
 * Compiles src/, cli/ and bench/children/ of the checkout at `root` (this one by default; another
 * for `--baseline`) into its bench/.build/ (git-ignored), with that checkout's own TypeScript.
 */
export function buildChildren(root = ROOT) {
  rmSync(join(root, 'bench', '.build'), { recursive: true, force: true });
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.bench.json'], { cwd: root, stdio: 'inherit' });
  copyFileSync(join(root, 'bench', 'children', 'echo-mcp-server.mjs'), join(builtChildren(root), 'echo-mcp-server.mjs'));
  // The web console's page and scripts are not TypeScript: copied beside the build, as `npm run build` does.
  const consoleFiles = join(root, 'src', 'console', 'public');
  if (existsSync(consoleFiles)) cpSync(consoleFiles, join(root, 'bench', '.build', 'src', 'console', 'public'), { recursive: true });
}

export interface Tokens {
  guest: string;
  dev: string;
  admin: string;
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  url: string;
  tokens: Tokens;
  /** Peak resident set (VmHWM) in KiB: the process's own high-water mark since it started. */
  peakRssKb(): number;
  rssKb(): number;
  /** User + system CPU time the process has used so far, in ms. */
  cpuMs(): number;
  /** Sends `message` and resolves with the first reply of type `replyType`. */
  ask<T = Record<string, unknown>>(message: Record<string, unknown>, replyType: string, timeoutMs?: number): Promise<T>;
  /** Asks for a graceful stop; kills it if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Settings every gateway under test gets; a bench case overrides what it measures. */
export const BENCH_ENV: Record<string, string> = {
  HOST: '127.0.0.1',
  PORT: '0',
  LOG_LEVEL: 'silent',
  RBAC_ENABLED: 'true',
  APPROVAL_WORKFLOW_ENABLED: 'true',
  APPROVAL_TIMEOUT: '600',
  APPROVAL_MAX_PENDING: '50000',
  // The rate limiters (when wired) would throttle a load test of one token; 0 turns them off.
  RATE_LIMIT_PER_MINUTE: '0',
  AUTH_FAILURE_LIMIT_PER_MINUTE: '0',
};

export function tempDir(prefix = 'toolgate-bench-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

function procStatus(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/**
 * Forks the compiled `bench/children/<name>.ts` (see buildChildren) with `env`, waits for its `ready` message.
 * `cpuProfDir` runs it with --cpu-prof (the profile is written when it stops); `root` picks the
 * checkout it was built from (a `--baseline` checkout speaks the same IPC protocol).
 */
export async function startChild(name: 'gateway' | 'bare-hono' | 'mcp-proxy' | 'decider', env: Record<string, string>, options: { cpuProfDir?: string; timeoutMs?: number; root?: string } = {}): Promise<Child> {
  const execArgv = ['--expose-gc', ...(options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : [])];
  const root = options.root ?? ROOT;
  const proc = fork(join(builtChildren(root), `${name}.js`), [], {
    cwd: root,
    execArgv,
    env: { ...process.env, ...env, NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const ready = await new Promise<{ url: string; tokens: Tokens }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${options.timeoutMs ?? 60_000} ms`)), options.timeoutMs ?? 60_000);
    proc.on('message', (m: { type?: string; url?: string; tokens?: Tokens }) => {
      if (m?.type === 'ready') {
        clearTimeout(timer);
        resolve({ url: m.url!, tokens: m.tokens! });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready`));
    });
  }).catch((err) => {
    proc.kill('SIGKILL');
    throw err;
  });
  const pid = proc.pid!;
  return {
    proc,
    pid,
    url: ready.url,
    tokens: ready.tokens,
    peakRssKb: () => procStatus(pid, 'VmHWM'),
    rssKb: () => procStatus(pid, 'VmRSS'),
    cpuMs: () => procCpuMs(pid),
    ask<T>(message: Record<string, unknown>, replyType: string, timeoutMs = 30_000) {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          proc.off('message', onMessage);
          reject(new Error(`${name} did not answer ${String(message.type)} within ${timeoutMs} ms`));
        }, timeoutMs);
        const onMessage = (m: { type?: string }) => {
          if (m?.type !== replyType) return;
          clearTimeout(timer);
          proc.off('message', onMessage);
          resolve(m as T);
        };
        proc.on('message', onMessage);
        proc.send(message);
      });
    },
    async stop(graceMs = 20_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      if (proc.connected) proc.send({ type: 'stop' });
      else proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts a gateway child on a fresh database in a new temp dir; `using` gives both back in finally. */
export async function withGateway<T>(
  env: Record<string, string>,
  fn: (gw: Child, dir: string) => Promise<T>,
  options: { cpuProfDir?: string; dir?: string; dbPath?: string; root?: string } = {},
): Promise<T> {
  const dir = options.dir ? { path: options.dir, remove: () => undefined } : tempDir();
  const gw = await startChild('gateway', { ...BENCH_ENV, DATABASE_PATH: options.dbPath ?? join(dir.path, 'toolgate.db'), ...env }, options);
  try {
    return await fn(gw, dir.path);
  } finally {
    await gw.stop();
    dir.remove();
  }
}
