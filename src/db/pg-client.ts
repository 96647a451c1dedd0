import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { migrationsFolder } from './client.js';
import * as schema from './pg-schema.js';

export type PgDb = PostgresJsDatabase<typeof schema>;

export interface PgOptions {
  /** Connections in this process's pool. */
  poolSize?: number;
  /** Statements running longer are cancelled by the server (0: no limit). */
  statementTimeoutMs?: number;
  /** Names this process in pg_stat_activity. */
  applicationName?: string;
}

/**
 * Advisory lock keys, (namespace, key) pairs so that they cannot collide with another
 * application's single-key locks on the same database.
 */
export const LOCK_NAMESPACE = 0x746f6f6c; // "tool"
export const LOCKS = {
  migrations: 1,
  pendingCaps: 2,
  /** Retention rewriting the audit anchors (never taken by an append). */
  auditMaintenance: 3,
} as const;

/** The PostgreSQL migrations generated from pg-schema.ts (drizzle.pg.config.ts). */
export function pgMigrationsFolder(): string {
  return join(migrationsFolder(), 'pg');
}

/** A postgres.js pool on `url`, with the pool size, statement timeout and application name set. */
export function connect(url: string, options: PgOptions = {}): Sql {
  return postgres(url, {
    max: options.poolSize ?? 10,
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? 'toolgate',
      ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    },
  });
}

export function pgDrizzle(client: Sql): PgDb {
  return drizzle({ client, schema });
}

/**
 * Applies the migrations in drizzle/pg/ on one connection that holds a session advisory lock
 * meanwhile: several gateways starting at once on a new database migrate one after another, and
 * every one but the first finds nothing left to do (without the lock, two CREATE TABLEs race and
 * one start fails).
 */
export async function migratePostgres(url: string, options: PgOptions = {}): Promise<void> {
  const client = connect(url, { ...options, poolSize: 1, applicationName: 'toolgate migrate' });
  try {
    await client`select pg_advisory_lock(${LOCK_NAMESPACE}, ${LOCKS.migrations})`;
    try {
      await migrate(pgDrizzle(client), { migrationsFolder: pgMigrationsFolder() });
    } finally {
      await client`select pg_advisory_unlock(${LOCK_NAMESPACE}, ${LOCKS.migrations})`;
    }
  } finally {
    await client.end({ timeout: 5 });
  }
}

/** The URL with its password masked, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://…';
  }
}
