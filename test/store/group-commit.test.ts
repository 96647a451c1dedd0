/**
 * Group commit in the SQLite store: transactions that queue up while one runs share one
 * BEGIN IMMEDIATE … COMMIT, each under its own SAVEPOINT. What must hold: one failing rolls back
 * only itself, nobody is answered before the shared COMMIT, and each sees the writes of those
 * before it, as if they had committed one by one.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('toolgate-group-commit-');
afterAll(() => dir.remove());
let files = 0;
const open = (maxBatch?: number) => SqliteStore.open(join(dir.path, `gc-${++files}.db`), maxBatch === undefined ? {} : { maxBatch });

describe('SQLite group commit', () => {
  it('carries the transactions that queue up during one in a single COMMIT, and answers each with its own value', async () => {
    const store = open();
    try {
      const before = { ...store.counters };
      const values = await Promise.all(Array.from({ length: 20 }, (_, i) => store.withTransaction(async (tx) => (await tx.meta.setMeta(`k${i}`, `v${i}`, i), i))));
      expect(values).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(store.counters.transactions - before.transactions).toBe(20);
      // The first opens the batch; the other 19 queue while it runs and join it: one COMMIT for all.
      expect(store.counters.commits - before.commits).toBe(1);
      for (let i = 0; i < 20; i++) expect(await store.meta.getMeta(`k${i}`)).toBe(`v${i}`);
    } finally {
      await store.close();
    }
  });

  it('rolls back only the transaction that failed; the others in its batch commit', async () => {
    const store = open();
    try {
      const first = store.withTransaction(async (tx) => tx.meta.setMeta('first', '1', 1));
      const failing = store.withTransaction(async (tx) => {
        await tx.meta.setMeta('failing', 'written then undone', 1);
        throw new Error('changed my mind');
      });
      const last = store.withTransaction(async (tx) => tx.meta.setMeta('last', '3', 1));
      const [a, b, c] = await Promise.allSettled([first, failing, last]);
      expect(a.status).toBe('fulfilled');
      expect(b).toMatchObject({ status: 'rejected', reason: { message: 'changed my mind' } });
      expect(c.status).toBe('fulfilled');
      expect(await store.meta.getMeta('first')).toBe('1');
      expect(await store.meta.getMeta('failing')).toBeUndefined();
      expect(await store.meta.getMeta('last')).toBe('3');
    } finally {
      await store.close();
    }
  });

  it('lets the rest of a batch commit when its first transaction fails', async () => {
    const store = open();
    try {
      // The first of a batch runs without a savepoint: when it fails, the transaction is rolled
      // back whole and the next one begins anew.
      const first = store.withTransaction(async (tx) => {
        await tx.meta.setMeta('first', 'written then undone', 1);
        throw new Error('first fails');
      });
      const second = store.withTransaction(async (tx) => tx.meta.setMeta('second', '2', 1));
      const third = store.withTransaction(async (tx) => tx.meta.setMeta('third', '3', 1));
      const results = await Promise.allSettled([first, second, third]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
      expect(await store.meta.getMeta('first')).toBeUndefined();
      expect(await store.meta.getMeta('second')).toBe('2');
      expect(await store.meta.getMeta('third')).toBe('3');
    } finally {
      await store.close();
    }
  });

  it('answers no caller before the shared COMMIT: what a caller was told is committed, another connection sees it', async () => {
    const store = open();
    const outsider = new Database(store.path, { readonly: true });
    try {
      const seenAtAnswer: (string | undefined)[] = [];
      const read = outsider.prepare('select value from meta where key = ?');
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store
            .withTransaction(async (tx) => tx.meta.setMeta(`c${i}`, 'durable', i))
            .then(() => seenAtAnswer.push((read.get(`c${i}`) as { value: string } | undefined)?.value)),
        ),
      );
      expect(seenAtAnswer).toEqual(Array(10).fill('durable'));
    } finally {
      outsider.close();
      await store.close();
    }
  });

  it('lets each transaction of a batch see the writes of those before it (read-then-write stays atomic)', async () => {
    const store = open();
    try {
      await store.withTransaction((tx) => tx.meta.setMeta('counter', '0', 0));
      // Fifty read-increment-write transactions at once: with batching they run inside one COMMIT, and
      // the count is still exact only if each reads what the one before it wrote.
      await Promise.all(
        Array.from({ length: 50 }, () =>
          store.withTransaction(async (tx) => {
            const n = Number(await tx.meta.getMeta('counter'));
            await tx.meta.setMeta('counter', String(n + 1), 0);
          }),
        ),
      );
      expect(await store.meta.getMeta('counter')).toBe('50');
      expect(store.counters.commits).toBeLessThan(10);
    } finally {
      await store.close();
    }
  });

  it('keeps a batch to maxBatch transactions, and maxBatch 1 commits each on its own', async () => {
    for (const [maxBatch, commits] of [
      [5, 4],
      [1, 20],
    ] as const) {
      const store = open(maxBatch);
      try {
        await Promise.all(Array.from({ length: 20 }, (_, i) => store.withTransaction((tx) => tx.meta.setMeta(`m${i}`, 'x', i))));
        // maxBatch 5: four batches of five.
        expect(store.counters).toEqual({ transactions: 20, commits });
      } finally {
        await store.close();
      }
    }
  });
});
