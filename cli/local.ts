import { existsSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { SqliteStore } from '../src/db/sqlite-store.js';

/** Opens DATABASE_PATH (migrating it) for commands that act on the file directly. */
export function openLocalStore(env = process.env): SqliteStore {
  return SqliteStore.open(loadConfig(env).databasePath);
}

/** Opens an existing DATABASE_PATH without migrating it: maintenance must not create or change a file. */
export function openExistingStore(env = process.env): SqliteStore {
  const { databasePath } = loadConfig(env);
  if (!existsSync(databasePath)) throw new Error(`no database at ${databasePath} (set DATABASE_PATH)`);
  return SqliteStore.open(databasePath, { migrate: false });
}

export async function withLocalStore<T>(fn: (store: SqliteStore) => Promise<T> | T, open = openLocalStore): Promise<T> {
  const store = open();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
