/**
 * A throwaway PostgreSQL cluster for the test run (vitest globalSetup of `npm run test:pg`), and
 * a fresh database per caller.
 *
 * The setup starts a throwaway cluster (test/kit/pg-cluster.ts) with fsync off and migrates one
 * `migrated` database with the real migrations (drizzle/pg/); every test database is a copy of it
 * (`CREATE DATABASE … TEMPLATE migrated`, tens of milliseconds). The cluster is stopped and deleted when the run ends.
 *
 * Without the binaries it says so and the PostgreSQL suites skip; with CI=1 it fails instead, so
 * that CI can never pass by skipping them.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { migratePostgres } from '../../src/db/pg-client.js';
import { NO_POSTGRES, startThrowawayPostgres } from './pg-cluster.js';

/** Set by the setup for every worker and child: the cluster's maintenance database. */
const ADMIN_URL_VAR = 'TOOLGATE_TEST_PG_URL';
const TEMPLATE = 'migrated';

export default async function setup(): Promise<(() => void) | undefined> {
  const started = Date.now();
  const cluster = await startThrowawayPostgres({ fsync: false });
  if (!cluster) {
    if (process.env.CI) throw new Error(`${NO_POSTGRES}: CI=1 requires the PostgreSQL suites to run`);
    console.warn(`SKIPPING the PostgreSQL suites: ${NO_POSTGRES}.`);
    return undefined;
  }
  try {
    await migratePostgres(await cluster.createDatabase(TEMPLATE));
    process.env[ADMIN_URL_VAR] = cluster.adminUrl;
    console.info(`started a throwaway PostgreSQL (${cluster.bin}) on ${new URL(cluster.adminUrl).host} in ${Date.now() - started} ms: ${cluster.dir}`);
  } catch (err) {
    cluster.stop();
    throw err;
  }
  return () => cluster.stop();
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
