import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { pgMigrationsFolder } from './pg-client.js';

export interface MigrationReport {
  /** Migrations in drizzle/pg/ that this build knows. */
  known: number;
  /** Migrations recorded as applied in the database. */
  applied: number;
}

/**
 * What `toolgate db check` can ask of a PostgreSQL database. Backups are pg_dump's job (a
 * consistent snapshot of a live database, restored with pg_restore); integrity is the server's.
 */
export class PgAdmin {
  constructor(private readonly client: Sql) {}

  /** The server's version string, e.g. `PostgreSQL 15.8 (Debian 15.8-0+deb12u1) …`. */
  async serverVersion(): Promise<string> {
    const [row] = await this.client<{ version: string }[]>`select version()`;
    return row?.version ?? 'unknown';
  }

  /** How many of this build's migrations the database has applied (by drizzle's own record). */
  async migrations(): Promise<MigrationReport> {
    const journal = JSON.parse(readFileSync(join(pgMigrationsFolder(), 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    const [table] = await this.client<{ exists: boolean }[]>`select to_regclass('drizzle.__drizzle_migrations') is not null as exists`;
    if (!table?.exists) return { known: journal.entries.length, applied: 0 };
    const [row] = await this.client<{ n: string }[]>`select count(*) as n from drizzle.__drizzle_migrations`;
    return { known: journal.entries.length, applied: Number(row?.n ?? 0) };
  }
}
