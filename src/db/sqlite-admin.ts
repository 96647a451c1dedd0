import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createPrivateFile, PRIVATE_FILE_MODE, type DatabaseHandle } from './client.js';

export interface BackupResult {
  path: string;
  pages: number;
  /** `ok`, or what PRAGMA quick_check found wrong in the copy. */
  check: string;
}

export interface IntegrityReport {
  /** `["ok"]` when PRAGMA integrity_check finds nothing. */
  integrity: string[];
  /** Rows whose foreign key points nowhere. */
  foreignKeyViolations: number;
}

/** The SQLite file's maintenance: online backup, integrity check, WAL checkpoint. Used by the CLI and at shutdown. */
export class SqliteAdmin {
  constructor(private readonly handle: DatabaseHandle) {}

  /**
   * Copies the live database to `destination` with SQLite's online backup API: it reads a
   * consistent snapshot page by page while gateways keep reading and writing (WAL), so no
   * downtime is needed. The copy is then opened and checked, so a backup that reports success
   * is one that can be restored. The copy is readable by its owner only (0600).
   */
  async backup(destination: string, options: { overwrite?: boolean } = {}): Promise<BackupResult> {
    const target = resolve(destination);
    if (target === resolve(this.handle.sqlite.name)) throw new Error('the backup file must not be the database itself');
    if (existsSync(target) && !options.overwrite) throw new Error(`${destination} already exists (pass --force to overwrite it)`);
    // Created 0600 before SQLite writes into it: a backup holds everything the database does.
    createPrivateFile(target);
    chmodSync(target, PRIVATE_FILE_MODE);
    const { totalPages } = await this.handle.sqlite.backup(target);
    const copy = new Database(target, { readonly: true });
    try {
      const rows = copy.pragma('quick_check') as { quick_check: string }[];
      return { path: target, pages: totalPages, check: rows.map((r) => r.quick_check).join('; ') };
    } finally {
      copy.close();
    }
  }

  /** PRAGMA integrity_check (every page, index and constraint) and foreign_key_check. */
  checkIntegrity(): IntegrityReport {
    const rows = this.handle.sqlite.pragma('integrity_check(100)') as { integrity_check: string }[];
    const fk = this.handle.sqlite.pragma('foreign_key_check') as unknown[];
    return { integrity: rows.map((r) => r.integrity_check), foreignKeyViolations: fk.length };
  }

  /** Moves the WAL's pages into the database file and truncates the WAL (at shutdown, after bulk loads). */
  checkpointWal(): void {
    this.handle.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  }
}
