import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
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

/** Folders toolgate creates hold tokens' hashes, arguments and keys: owner only. */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `path` empty with mode 0600 unless it exists. SQLite gives the `-wal`, `-shm` and
 * `-journal` files the mode of the database file, so they are private too.
 */
export function createPrivateFile(path: string) {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
}

/**
 * Opens (creating if needed) the SQLite file in WAL mode with foreign keys and a busy timeout,
 * so that several processes can share it without SQLITE_BUSY under ordinary contention. A new
 * data folder is created 0700 and a new database file 0600.
 */
export function openDatabase(path: string, options: { migrate?: boolean; readonly?: boolean } = {}): DatabaseHandle {
  if (path !== ':memory:' && !path.startsWith('file:')) {
    mkdirSync(dirname(resolve(path)), { recursive: true, mode: PRIVATE_DIR_MODE });
    if (!options.readonly && !existsSync(path)) createPrivateFile(path);
  }
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
