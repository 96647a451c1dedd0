import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db/client.js';
import { Store } from '../src/db/store.js';

/** Opens DATABASE_PATH (migrating it) for commands that act on the file directly. */
export function openLocalStore(env = process.env): { store: Store; path: string; close(): void } {
  const config = loadConfig(env);
  const handle = openDatabase(config.databasePath);
  return { store: new Store(handle), path: config.databasePath, close: () => handle.close() };
}

export function withLocalStore<T>(fn: (store: Store, path: string) => T): T {
  const local = openLocalStore();
  try {
    return fn(local.store, local.path);
  } finally {
    local.close();
  }
}
