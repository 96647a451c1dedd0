import { getTableName, is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainHash, createAuditLog, GENESIS_HASH, verifyAuditChain } from '../../src/audit/audit.service.js';
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

  it('upgrades a database whose audit log was written before per-writer chains: new events continue after the stored ones, and the old chain still verifies', async () => {
    const url = await freshDatabase({ empty: true });
    // Only the first migration, as a gateway from before per-writer chains left the database.
    const folder = mkdtempSync(join(tmpdir(), 'toolgate-pg-migrations-'));
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      cpSync(pgMigrationsFolder(), folder, { recursive: true });
      const full = JSON.parse(readFileSync(join(folder, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };
      writeFileSync(join(folder, 'meta/_journal.json'), JSON.stringify({ ...full, entries: full.entries.slice(0, 1) }));
      await migrate(drizzle(sql), { migrationsFolder: folder });
      let prev = GENESIS_HASH;
      for (let seq = 1; seq <= 3; seq++) {
        const event = { seq, at: 1_700_000_000_000 + seq, actor: 'admin', action: 'user.created', tool: null, requestId: null, status: null, durationMs: null, details: '{}', httpRequestId: null, instanceId: 'old', chain: null, chainSeq: null };
        const hash = chainHash(prev, event);
        await sql`insert into audit_events (seq, at, actor, action, details, instance_id, prev_hash, hash) values (${seq}, ${event.at}, 'admin', 'user.created', '{}', 'old', ${prev}, ${hash})`;
        prev = hash;
      }
    } finally {
      await sql.end();
      rmSync(folder, { recursive: true, force: true });
    }
    const store = await PgStore.open(url);
    try {
      const log = createAuditLog({ clock: { now: () => Date.now() }, instanceId: 'new-gateway' });
      await store.withTransaction((tx) => log.append(tx, { actor: 'admin', action: 'user.created' }));
      const seqs = (await store.audit.auditPage({ limit: 10 })).map((e) => e.seq).sort((a, b) => a - b);
      expect(seqs).toEqual([1, 2, 3, 4]);
      expect(await verifyAuditChain(store)).toMatchObject({ ok: true, checked: 4, chains: 2 });
    } finally {
      await store.close();
    }
  });
});
