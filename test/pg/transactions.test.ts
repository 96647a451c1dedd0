import { describe, expect, it } from 'vitest';
import { PgStore, sqlState } from '../../src/db/pg-store.js';
import { freshDatabase, postgresAvailable, SKIP_REASON } from '../kit/postgres.js';

describe.skipIf(!postgresAvailable())(`the PostgreSQL store's transactions and pool${postgresAvailable() ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  it('runs a transaction PostgreSQL aborts as a deadlock again, so both sides of the deadlock commit', async () => {
    const store = await PgStore.open(await freshDatabase(), { migrate: false });
    try {
      await store.withTransaction(async (tx) => {
        await tx.meta.setMeta('a', '0', 1);
        await tx.meta.setMeta('b', '0', 1);
      });
      let runs = 0;
      let aLocked!: () => void;
      let bLocked!: () => void;
      const aHeld = new Promise<void>((resolve) => (aLocked = resolve));
      const bHeld = new Promise<void>((resolve) => (bLocked = resolve));
      // Each locks one row, waits until the other has locked the other row, then wants it: a deadlock.
      const first = store.withTransaction(async (tx) => {
        runs++;
        await tx.meta.setMeta('a', 'first', 2);
        aLocked();
        await bHeld;
        await tx.meta.setMeta('b', 'first', 2);
      });
      const second = store.withTransaction(async (tx) => {
        runs++;
        await tx.meta.setMeta('b', 'second', 2);
        bLocked();
        await aHeld;
        await tx.meta.setMeta('a', 'second', 2);
      });
      await Promise.all([first, second]);
      expect(runs).toBe(3);
      // The retried one ran last, whole: both rows carry its value.
      const a = await store.meta.getMeta('a');
      expect(await store.meta.getMeta('b')).toBe(a);
    } finally {
      await store.close();
    }
  });

  it('has the server cancel a statement that runs past DATABASE_STATEMENT_TIMEOUT', async () => {
    const store = await PgStore.open(await freshDatabase(), { migrate: false, statementTimeoutMs: 200 });
    try {
      const slow = store.client`select pg_sleep(2)`;
      await expect(slow).rejects.toSatisfy((err) => sqlState(err) === '57014');
      await store.ping();
    } finally {
      await store.close();
    }
  });

  it('closes with nothing left open: a query after close fails at once', async () => {
    const store = await PgStore.open(await freshDatabase(), { migrate: false });
    await store.ping();
    await store.close();
    await store.close();
    await expect(store.ping()).rejects.toThrow();
  });
});
