/**
 * A throwaway PostgreSQL cluster: Debian's binaries (/usr/lib/postgresql/<version>/bin, or
 * TOOLGATE_PG_BIN) run with no systemd and nothing written outside a temp folder: initdb (as the
 * `postgres` user when run as root, which initdb refuses to be), then pg_ctl start on 127.0.0.1 and
 * a free port, with its socket in the temp folder. Used by the PostgreSQL test run (test/kit/postgres.ts)
 * and by the benchmark (bench/sections/postgres.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { pgBinDir } from './pg-bin.js';

export interface ThrowawayPostgres {
  /** The maintenance database `postgres` as user `postgres` (trust authentication on loopback). */
  adminUrl: string;
  bin: string;
  dir: string;
  /** The URL of database `name` on this cluster. */
  databaseUrl(name: string): string;
  /** Creates database `name` (a copy of `template`, template0 by default) and gives its URL. */
  createDatabase(name: string, template?: string): Promise<string>;
  /** Stops the server at once and deletes its folder. */
  stop(): void;
}

export const NO_POSTGRES = "PostgreSQL binaries not found (no /usr/lib/postgresql/*/bin/initdb; install Debian's `postgresql` package or set TOOLGATE_PG_BIN)";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a cluster, or gives undefined when the binaries are not installed. `fsync: false` (the
 * tests) trades durability for speed; the benchmark keeps PostgreSQL's defaults.
 */
export async function startThrowawayPostgres(options: { fsync?: boolean; maxConnections?: number } = {}): Promise<ThrowawayPostgres | undefined> {
  const bin = pgBinDir();
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    const result = spawnSync(file, argv, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${cmd} failed (${result.status}): ${result.stderr || result.stdout}`);
  };
  const data = join(dir, 'data');
  const port = await freePort();
  const settings = [`-c listen_addresses=127.0.0.1`, `-p ${port}`, `-k ${dir}`, `-c max_connections=${options.maxConnections ?? 300}`, ...(options.fsync === false ? ['-c fsync=off'] : [])];
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
    run('pg_ctl', ['-D', data, '-w', '-l', join(dir, 'server.log'), '-o', settings.join(' '), 'start']);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const databaseUrl = (name: string) => {
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  };
  return {
    adminUrl,
    bin,
    dir,
    databaseUrl,
    async createDatabase(name, template = 'template0') {
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`create database ${name} template ${template}`);
      } finally {
        await admin.end();
      }
      return databaseUrl(name);
    },
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
