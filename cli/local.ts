import { existsSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { openStore, type GatewayStore } from '../src/db/open-store.js';

/** Opens the configured database (DATABASE_URL, else DATABASE_PATH), migrating it, for commands that act on it directly. */
export function openLocalStore(env = process.env): Promise<GatewayStore> {
  return openStore(loadConfig(env), { applicationName: 'toolgate cli' });
}

/**
 * Opens the configured database without migrating it: maintenance must not create or change a
 * database. A SQLite file must exist.
 */
export function openExistingStore(env = process.env): Promise<GatewayStore> {
  const config = loadConfig(env);
  if (!config.databaseUrl && !existsSync(config.databasePath)) throw new Error(`no database at ${config.databasePath} (set DATABASE_PATH, or DATABASE_URL for PostgreSQL)`);
  return openStore(config, { migrate: false, applicationName: 'toolgate cli' });
}

export async function withLocalStore<T>(fn: (store: GatewayStore) => Promise<T> | T, open = openLocalStore): Promise<T> {
  const store = await open();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
