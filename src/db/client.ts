import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as schema from './schema.js';

export type Db = BetterSQLite3Database<typeof schema>;

export interface DatabaseHandle {
  db: Db;
  sqlite: Database.Database;
  path: string;
  close(): void;
}

/** The `drizzle/` folder of this package, whether running from src/ or from dist/. */
export function migrationsFolder(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'drizzle', 'meta', '_journal.json');
    if (existsSync(candidate)) return join(dir, 'drizzle');
    dir = dirname(dir);
  }
  throw new Error('drizzle/ migrations folder not found');
}

/**
 * Opens (creating if needed) the SQLite file in WAL mode with foreign keys and a busy timeout,
 * so that several processes can share it without SQLITE_BUSY under ordinary contention.
 */
export function openDatabase(path: string, options: { migrate?: boolean; readonly?: boolean } = {}): DatabaseHandle {
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  const sqlite = new Database(path, { readonly: options.readonly ?? false });
  sqlite.pragma('busy_timeout = 10000');
  if (!options.readonly) {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
  }
  sqlite.pragma('foreign_keys = ON');
  const db = drizzle(sqlite, { schema });
  if (options.migrate ?? true) migrate(db, { migrationsFolder: migrationsFolder() });
  return {
    db,
    sqlite,
    path,
    close: () => {
      if (sqlite.open) sqlite.close();
    },
  };
}
