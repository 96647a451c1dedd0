/**
 * A throwaway PostgreSQL cluster for the test run (vitest globalSetup of `npm run test:pg`), and
 * a fresh database per caller.
 *
 * The setup runs Debian's binaries (/usr/lib/postgresql/<version>/bin, or TOOLGATE_PG_BIN) with no
 * systemd and nothing written outside a temp folder: initdb (as the `postgres` user when run as
 * root, which initdb refuses to be), then pg_ctl start on 127.0.0.1 and a free port, with its
 * socket in the temp folder and fsync off. It migrates one `migrated` database with the real
 * migrations (drizzle/pg/); every test database is a copy of it (`CREATE DATABASE … TEMPLATE
 * migrated`, tens of milliseconds). The cluster is stopped and deleted when the run ends.
 *
 * Without the binaries it says so and the PostgreSQL suites skip; with CI=1 it fails instead, so
 * that CI can never pass by skipping them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { migratePostgres } from '../../src/db/pg-client.js';
import { pgBinDir } from './pg-bin.js';

/** Set by the setup for every worker and child: the cluster's maintenance database. */
const ADMIN_URL_VAR = 'TOOLGATE_TEST_PG_URL';
const TEMPLATE = 'migrated';

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

export default async function setup(): Promise<(() => void) | undefined> {
  const bin = pgBinDir();
  if (!bin) {
    const why = 'PostgreSQL binaries not found (no /usr/lib/postgresql/*/bin/initdb; install Debian\'s `postgresql` package or set TOOLGATE_PG_BIN)';
    if (process.env.CI) throw new Error(`${why}: CI=1 requires the PostgreSQL suites to run`);
    console.warn(`SKIPPING the PostgreSQL suites: ${why}.`);
    return undefined;
  }
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'toolgate-pg-'));
  const asRoot = process.getuid?.() === 0;
  // initdb and postgres refuse to run as root: as root, run them as the `postgres` user in a folder it owns.
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    const result = spawnSync(file, argv, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${cmd} failed (${result.status}): ${result.stderr || result.stdout}`);
  };
  const data = join(dir, 'data');
  const port = await freePort();
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
  run('pg_ctl', ['-D', data, '-w', '-l', join(dir, 'server.log'), '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=300`, 'start']);
  const stop = () => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${TEMPLATE}`);
    await admin.end();
    await migratePostgres(databaseUrl(adminUrl, TEMPLATE));
    process.env[ADMIN_URL_VAR] = adminUrl;
    console.info(`started a throwaway PostgreSQL (${bin}) on 127.0.0.1:${port} in ${Date.now() - started} ms: ${dir}`);
  } catch (err) {
    stop();
    throw err;
  }
  return stop;
}

function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Whether this run has a PostgreSQL cluster (test:pg, with the binaries installed). */
export function postgresAvailable(): boolean {
  return Boolean(process.env[ADMIN_URL_VAR]);
}

/** Why a PostgreSQL suite skips, for its title. */
export const SKIP_REASON = 'no PostgreSQL in this run (run `npm run test:pg` with the postgresql package installed)';

function adminUrl(): string {
  const url = process.env[ADMIN_URL_VAR];
  if (!url) throw new Error(`no PostgreSQL cluster in this run (${SKIP_REASON})`);
  return url;
}

/**
 * A new database on the test cluster and its URL: a copy of the migrated template (`migrated`), or
 * with `{ empty: true }` a database with no tables at all (for tests of the migrations themselves).
 */
export async function freshDatabase(options: { empty?: boolean } = {}): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name} template ${options.empty ? 'template0' : TEMPLATE}`);
  } finally {
    await admin.end();
  }
  return databaseUrl(adminUrl(), name);
}
