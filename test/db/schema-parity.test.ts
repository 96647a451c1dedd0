/**
 * The two schemas, src/db/schema.ts (SQLite) and src/db/pg-schema.ts (PostgreSQL), describe the
 * same tables: a column, key or index added to one and not the other fails here, before a
 * migration is generated for one dialect only.
 */
import { getTableName, is, type Column, type Table } from 'drizzle-orm';
import { getTableConfig as pgConfig, PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig as sqliteConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { describe, expect, it } from 'vitest';
import * as pg from '../../src/db/pg-schema.js';
import * as sqlite from '../../src/db/schema.js';

function tablesOf<T extends Table>(module: Record<string, unknown>, kind: typeof PgTable | typeof SQLiteTable): Map<string, T> {
  return new Map(
    Object.values(module)
      .filter((value): value is T => is(value, kind))
      .map((table) => [getTableName(table), table]),
  );
}

/** What must match across dialects: the JS type a column reads as, not its SQL type (integer vs bigint). */
function columnShape(column: Column) {
  return {
    type: column.dataType === 'bigint' ? 'number' : column.dataType,
    notNull: column.notNull,
    primary: column.primary,
    // A default, or an id the database assigns: AUTOINCREMENT on SQLite, an identity on PostgreSQL.
    hasDefault: column.default !== undefined || (column as { autoIncrement?: boolean }).autoIncrement === true || (column as { generatedIdentity?: unknown }).generatedIdentity !== undefined,
    enumValues: column.enumValues ?? null,
  };
}

type AnyConfig = ReturnType<typeof pgConfig> | ReturnType<typeof sqliteConfig>;

function tableShape(config: AnyConfig) {
  return {
    columns: Object.fromEntries(config.columns.map((c) => [c.name, columnShape(c)])),
    primaryKeys: config.primaryKeys.map((pk) => pk.columns.map((c) => c.name)),
    foreignKeys: config.foreignKeys
      .map((fk) => {
        const ref = fk.reference();
        return { columns: ref.columns.map((c) => c.name), table: getTableName(ref.foreignTable), foreignColumns: ref.foreignColumns.map((c) => c.name), onDelete: fk.onDelete ?? 'no action' };
      })
      .sort((a, b) => a.columns.join().localeCompare(b.columns.join())),
    indexes: config.indexes
      .map((index) => ({
        name: index.config.name,
        unique: index.config.unique,
        columns: index.config.columns.map((c) => (c as Column).name),
      }))
      .sort((a, b) => String(a.name).localeCompare(String(b.name))),
  };
}

describe('the SQLite and PostgreSQL schemas', () => {
  const sqliteTables = tablesOf<SQLiteTable>(sqlite, SQLiteTable);
  const pgTables = tablesOf<PgTable>(pg, PgTable);

  it('have the same tables', () => {
    expect([...pgTables.keys()].sort()).toEqual([...sqliteTables.keys()].sort());
    expect(sqliteTables.size).toBeGreaterThan(5);
  });

  for (const [name, table] of sqliteTables) {
    it(`give ${name} the same columns, types, nullability, defaults, keys and indexes`, () => {
      const other = pgTables.get(name);
      expect(other, `${name} is missing from pg-schema.ts`).toBeDefined();
      expect(tableShape(pgConfig(other!))).toEqual(tableShape(sqliteConfig(table)));
    });
  }

  it('keep every time as a 64-bit integer on PostgreSQL', () => {
    for (const table of pgTables.values()) {
      for (const column of pgConfig(table).columns) {
        if (/_at$/.test(column.name)) expect({ column: `${getTableName(table)}.${column.name}`, type: column.getSQLType() }).toEqual({ column: `${getTableName(table)}.${column.name}`, type: 'bigint' });
      }
    }
  });
});
