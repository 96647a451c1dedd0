import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { startGateway, type Gateway, type GatewayOptions } from '../src/main.js';
import type { ToolgateFile, UpstreamConfig } from '../src/tools/gateway-file.js';
import type { IssuedToken } from '../src/db/seed.js';
import Database from 'better-sqlite3';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { createFixtureServer } from './fixtures/fixture-tools.js';
import postgres from 'postgres';
import { isPostgresUrl } from '../src/db/open-store.js';
import { freshDatabase } from './kit/postgres.js';

/**
 * Whether this run puts test gateways on PostgreSQL (`npm run test:pg`): each gets a fresh
 * database on the run's throwaway cluster instead of a SQLite file.
 */
export const ON_POSTGRES = process.env.TOOLGATE_TEST_STORE === 'postgres';

/** Why a test that needs the SQLite file itself (its path, WAL, online backup, raw access) skips on PostgreSQL. */
export const SQLITE_ONLY = 'SQLite only: it is about the database file itself';

export const FIXTURE_SERVER = fileURLToPath(new URL('./fixtures/mcp-server.ts', import.meta.url));
export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/**
 * The `toolgate` binary: in the process tier, cli/toolgate.js of the build made once for
 * the run (test/kit/built-cli.ts); else the checkout's own, which runs the sources through tsx.
 */
export const CLI = process.env.TOOLGATE_TEST_CLI ?? join(ROOT, 'cli/toolgate.js');

export function tempDir(prefix = 'toolgate-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * The fixture MCP server over stdio, run by tsx; the tests trust its annotations (`echo` is LOW by its `readOnlyHint`).
 * `startTestGateway` runs it in-process unless asked for `upstream: 'stdio'`.
 */
export function fixtureToolgateFile(env: Record<string, string> = {}, extra: Partial<ToolgateFile> = {}): ToolgateFile {
  return {
    upstreams: [
      { name: 'fixture', command: process.execPath, args: ['--import', 'tsx', FIXTURE_SERVER], env, prefix: '', callTimeoutMs: 30_000, trustAnnotations: true },
    ],
    policy: [],
    defaults: {},
    ...extra,
  };
}

/**
 * Runs an upstream configured as the fixture server (see `fixtureToolgateFile`) in this process,
 * over the MCP SDK's linked in-memory transports: the gateway's real MCP client and upstream
 * manager still do the talking, but no child process starts. Its `crash` tool closes the server
 * (the manager reconnects to a new one), as the child's exit would. Other upstreams: as configured.
 */
export function inProcessFixture(config: UpstreamConfig): Transport | undefined {
  if (!('command' in config) || !config.args.includes(FIXTURE_SERVER)) return undefined;
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const server = createFixtureServer({ ...config.env }, () => void server.close());
  void server.connect(serverSide);
  return clientSide;
}

/** The folder of the first test gateway on each PostgreSQL database: gateways and CLIs sharing it share its key files. */
const dirOfDatabase = new Map<string, string>();
const databaseOfDir = new Map<string, string>();

export interface TestGateway {
  gateway: Gateway;
  /** The gateway's Hono app, for `api(t.app, …)`: the same requests with no socket in between. */
  app: Gateway['app'];
  url: string;
  wsUrl: string;
  dir: string;
  /** The gateway's database: its SQLite file, or on PostgreSQL (ON_POSTGRES) its URL. */
  dbPath: string;
  tokens: Record<'guest' | 'dev' | 'admin', string>;
  /**
   * A connection of the test's own to the gateway's SQLite file, for raw SQL: reading what was
   * stored, or tampering with it as an attacker with the file would. Opened on first use, closed by `close()`.
   * SQLite only; `query` works on both stores.
   */
  sql(): Database.Database;
  /**
   * Raw SQL on the gateway's database, SQLite or PostgreSQL alike: `?` placeholders, rows as
   * objects (column names as the SQL gives them). For reading what was stored, or tampering with it
   * as an attacker with database access would.
   */
  query<T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * A real gateway on 127.0.0.1:0 with a fresh SQLite file, the real migrations and the fixture
 * upstream: in-process by default, or a real child over stdio with `upstream: 'stdio'` (for tests
 * about the child itself: it dies, it restarts, it outlives a crash of the gateway).
 */
export async function startTestGateway(
  options: {
    env?: Record<string, string>;
    file?: ToolgateFile;
    fixtureEnv?: Record<string, string>;
    dir?: string;
    dbPath?: string;
    upstream?: 'in-process' | 'stdio';
  } & Partial<Omit<GatewayOptions, 'config'>> = {},
): Promise<TestGateway> {
  const { env, file, fixtureEnv, upstream = 'in-process', ...gatewayOptions } = options;
  const shared = options.dbPath !== undefined && isPostgresUrl(options.dbPath) ? dirOfDatabase.get(options.dbPath) : undefined;
  const dir = options.dir ?? shared ?? tempDir().path;
  // A gateway started again in the same folder finds the same database, as it would the same SQLite file there.
  const dbPath = options.dbPath ?? (ON_POSTGRES ? (databaseOfDir.get(dir) ?? (await freshDatabase())) : join(dir, 'toolgate.db'));
  const onPostgres = isPostgresUrl(dbPath);
  if (onPostgres && !dirOfDatabase.has(dbPath)) dirOfDatabase.set(dbPath, dir);
  if (onPostgres && !databaseOfDir.has(dir)) databaseOfDir.set(dir, dbPath);
  // On PostgreSQL, DATABASE_PATH still places the signing key and first-run files, in `dir`.
  const database = onPostgres ? { DATABASE_URL: dbPath, DATABASE_PATH: join(dir, 'toolgate.db') } : { DATABASE_PATH: dbPath };
  const config: Config = loadConfig({ PORT: '0', HOST: '127.0.0.1', ...database, LOG_LEVEL: 'silent', ...env });
  let seeded: IssuedToken[] = [];
  const gateway = await startGateway({
    logger: silentLogger,
    ...(upstream === 'in-process' ? { upstreamTransport: inProcessFixture } : {}),
    ...gatewayOptions,
    config,
    toolgateFile: file ?? fixtureToolgateFile(fixtureEnv),
    onSeeded: (t) => (seeded = t),
  });
  const tok = (user: string) => seeded.find((t) => t.user === user)?.token ?? '';
  let sql: Database.Database | undefined;
  let pg: postgres.Sql | undefined;
  const openSql = () => {
    if (onPostgres) throw new Error(`t.sql() opens the SQLite file; this gateway runs on PostgreSQL (use t.query(), or skip: ${SQLITE_ONLY})`);
    if (!sql) {
      sql = new Database(dbPath);
      sql.pragma('busy_timeout = 5000');
    }
    return sql;
  };
  return {
    gateway,
    app: gateway.app,
    url: gateway.url,
    wsUrl: `${gateway.url.replace(/^http/, 'ws')}/ws/approvals`,
    dir,
    dbPath,
    tokens: { guest: tok('guest_user'), dev: tok('dev_user'), admin: tok('admin_user') },
    sql: openSql,
    query: async <T,>(text: string, ...params: unknown[]): Promise<T[]> => {
      if (!onPostgres) {
        const statement = openSql().prepare(text);
        return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as T[];
      }
      pg ??= postgres(dbPath, { max: 1, onnotice: () => {} });
      let n = 0;
      const rows = await pg.unsafe(text.replace(/\?/g, () => `$${++n}`), params as never[]);
      return [...rows] as T[];
    },
    close: async () => {
      sql?.close();
      await pg?.end();
      await gateway.close();
      if (!options.dir && !shared) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A small HTTP client: JSON in, JSON out, never throws on HTTP errors. `target` is a gateway's URL
 * (a real socket), or its Hono app (`t.app`: `app.request()`, the same middleware and routes with
 * no socket, where the test is about a route and not about the connection).
 */
export async function api<T = any>(
  target: string | Pick<Gateway['app'], 'request'>,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: string | Uint8Array<ArrayBuffer> | Blob; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<ApiResponse<T>> {
  const send = typeof target === 'string' ? (init: RequestInit) => fetch(`${target}${path}`, init) : (init: RequestInit) => target.request(path, init);
  const res = await send({
    method,
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body !== undefined || options.rawBody !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    ...(options.rawBody !== undefined ? { body: options.rawBody } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, headers: res.headers };
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). For conditions, not for timing. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 5000, stepMs = 10): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Waits until the gateway has `n` pending requests and returns them. */
export async function pendingApprovals(t: TestGateway, n = 1) {
  return eventually(async () => {
    const res = await api(t.url, 'GET', '/api/approvals/pending?limit=1000', { token: t.tokens.admin });
    return res.body.pending_approvals.length >= n ? res.body.pending_approvals : null;
  });
}

export interface CliChild {
  child: ChildProcessWithoutNullStreams;
  exited: Promise<number | null>;
  lines(): string[];
  stdout(): string;
  stderr(): string;
  /** The first line (printed or still to come, from line `from` on) matching `pattern`, as its match. */
  waitFor(pattern: RegExp, from?: number, timeoutMs?: number): Promise<RegExpExecArray>;
  type(line: string): void;
  kill(): Promise<void>;
}

/**
 * The real `toolgate` binary in a child process: `toolgate approve --server … --token …` by
 * default, or any `args`. With `pty`, it runs on a pseudo-terminal (util-linux `script`), as an
 * approver at a terminal would, and stdout then carries what the terminal shows (stderr too).
 */
export function startApproveCli(server: string, token: string, options: { args?: string[]; pty?: boolean } = {}): CliChild {
  const args = options.args ?? ['approve', '--server', server, '--token', token];
  const argv = [CLI, ...args];
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const child: ChildProcessWithoutNullStreams = options.pty
    ? spawn('script', ['-qfec', [process.execPath, ...argv].map(quote).join(' '), '/dev/null'], { cwd: ROOT, env: { ...process.env, TOOLGATE_URL: '', TOOLGATE_TOKEN: '', NO_COLOR: '1' } })
    : spawn(process.execPath, argv, { cwd: ROOT, env: { ...process.env, TOOLGATE_URL: '', TOOLGATE_TOKEN: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const lines = () => stdout.split('\n').filter(Boolean);
  return {
    child,
    exited,
    lines,
    stdout: () => stdout,
    stderr: () => stderr,
    waitFor: (pattern, from = 0, timeoutMs = 15_000) =>
      eventually(() => {
        for (const line of lines().slice(from)) {
          const m = pattern.exec(line);
          if (m) return m;
        }
        return null;
      }, timeoutMs).catch(() => {
        throw new Error(`no line matching ${pattern} in:\n${stdout}\nstderr:\n${stderr}`);
      }),
    type: (line: string) => void child.stdin.write(`${line}\n`),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** What a one-shot `toolgate …` command did: its exit status (null if it was killed) and output. */
export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The working directory (default: the checkout), where the CLI looks for .env and toolgate.json. */
  cwd?: string;
  /** Killed after this long (default 60 s), so that a hung command fails its test instead of hanging it. */
  timeoutMs?: number;
  /** Variables to take out of the environment altogether (to see where a .env file applies). */
  unset?: string[];
}

/** The CLI's environment: this process's, without a TOOLGATE_URL or TOOLGATE_TOKEN of its own, plus `env`. */
function cliEnv(env: Record<string, string>, unset: string[] = []): NodeJS.ProcessEnv {
  const all: NodeJS.ProcessEnv = { ...process.env, TOOLGATE_URL: '', TOOLGATE_TOKEN: '', ...env };
  // A test gateway's dbPath is its database URL on PostgreSQL: the CLI reads that as DATABASE_URL.
  if (all.DATABASE_PATH && isPostgresUrl(all.DATABASE_PATH)) {
    all.DATABASE_URL = all.DATABASE_PATH;
    all.DATABASE_PATH = join(dirOfDatabase.get(all.DATABASE_PATH) ?? tmpdir(), 'toolgate.db');
  }
  for (const name of unset) delete all[name];
  return all;
}

/** The real `toolgate` binary (`CLI`), run to completion without blocking this process: an in-process gateway keeps answering. */
export async function runCli(args: string[], env: Record<string, string> = {}, options: CliOptions = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env: cliEnv(env, options.unset), timeout: options.timeoutMs ?? 60_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end();
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { status, stdout, stderr };
}

/**
 * The same, blocking this process until it exits: for tests that need an in-process gateway to
 * stand still meanwhile (several changes lined up before it sees any), or that have none. Else `runCli`.
 */
export function runCliSync(args: string[], env: Record<string, string> = {}, options: CliOptions = {}): CliResult {
  const res = spawnSync(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env: cliEnv(env, options.unset), encoding: 'utf8', timeout: options.timeoutMs ?? 60_000 });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}
