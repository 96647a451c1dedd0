import type { Config } from '../config.js';
import { PgStore } from './pg-store.js';
import { SqliteStore } from './sqlite-store.js';

/** The store a gateway runs on: SQLite (embedded, the default) or PostgreSQL (DATABASE_URL). */
export type GatewayStore = SqliteStore | PgStore;

export type StoreSettings = Pick<Config, 'databasePath' | 'databaseUrl' | 'databasePoolSize' | 'databaseStatementTimeoutMs'> & Partial<Pick<Config, 'sqliteGroupCommitMax'>>;

/** Whether `location` (a SQLite path or a database URL) is a PostgreSQL URL. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

/**
 * Opens the configured store: PostgreSQL when DATABASE_URL is set, else the SQLite file at
 * DATABASE_PATH. Migrates it first unless told not to (on PostgreSQL under an advisory lock).
 */
export async function openStore(settings: StoreSettings, options: { migrate?: boolean; applicationName?: string } = {}): Promise<GatewayStore> {
  if (settings.databaseUrl) {
    return PgStore.open(settings.databaseUrl, {
      migrate: options.migrate ?? true,
      poolSize: settings.databasePoolSize,
      statementTimeoutMs: settings.databaseStatementTimeoutMs,
      ...(options.applicationName ? { applicationName: options.applicationName } : {}),
    });
  }
  return SqliteStore.open(settings.databasePath, {
    migrate: options.migrate ?? true,
    ...(settings.sqliteGroupCommitMax !== undefined ? { maxBatch: settings.sqliteGroupCommitMax } : {}),
  });
}

/** Opens a store by its location alone: a postgres:// URL or a SQLite file path (tests, the decider). */
export function openStoreAt(location: string, options: { migrate?: boolean } = {}): Promise<GatewayStore> {
  return isPostgresUrl(location)
    ? openStore({ databaseUrl: location, databasePath: '', databasePoolSize: 10, databaseStatementTimeoutMs: 30_000 }, options)
    : openStore({ databaseUrl: undefined, databasePath: location, databasePoolSize: 10, databaseStatementTimeoutMs: 30_000 }, options);
}
