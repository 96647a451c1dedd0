import { getTableName, is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pgMigrationsFolder } from '../../src/db/pg-client.js';
import * as schema from '../../src/db/pg-schema.js';
import { PgStore } from '../../src/db/pg-store.js';
import { freshDatabase, postgresAvailable, SKIP_REASON } from '../kit/postgres.js';

const schemaTables = Object.values(schema)
  .filter((value) => is(value, PgTable))
  .map((table) => getTableName(table))
  .sort();
const journal = JSON.parse(readFileSync(join(pgMigrationsFolder(), 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };

describe.skipIf(!postgresAvailable())(`PostgreSQL migrations${postgresAvailable() ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  it('migrates a new database when several gateways start on it at once: every one starts, each migration is applied once', async () => {
    const url = await freshDatabase({ empty: true });
    const opened = await Promise.allSettled(Array.from({ length: 4 }, () => PgStore.open(url)));
    try {
      expect(opened.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        const [applied] = await sql<{ n: string }[]>`select count(*) as n from drizzle.__drizzle_migrations`;
        expect(Number(applied?.n)).toBe(journal.entries.length);
        const tables = await sql<{ name: string }[]>`select table_name as name from information_schema.tables where table_schema = 'public' order by 1`;
        expect(tables.map((t) => t.name)).toEqual(schemaTables);
      } finally {
        await sql.end();
      }
    } finally {
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
    }
  });

  it('finds nothing to do on a database that is already migrated', async () => {
    const url = await freshDatabase();
    const store = await PgStore.open(url);
    try {
      await store.withTransaction((tx) => tx.meta.setMeta('kept', 'yes', 1));
    } finally {
      await store.close();
    }
    const again = await PgStore.open(url);
    try {
      expect(await again.meta.getMeta('kept')).toBe('yes');
    } finally {
      await again.close();
    }
  });
});
