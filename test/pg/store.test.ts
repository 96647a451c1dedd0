import { describe } from 'vitest';
import type { Persistence } from '../../src/core/persistence.js';
import { PgStore } from '../../src/db/pg-store.js';
import { freshDatabase, postgresAvailable, SKIP_REASON } from '../kit/postgres.js';
import { storeContract, type StoreFactory } from '../store/contract.js';
import { notifyStoreContract } from '../store/notify-contract.js';
import { otherProcess } from '../store/elsewhere.js';

/** Each store's database URL: `another` and `elsewhere` open the same database. */
const urls = new WeakMap<Persistence, string>();
const open = async (url: string) => {
  const store = await PgStore.open(url, { migrate: false });
  urls.set(store, url);
  return store;
};

if (postgresAvailable()) {
  const pg: StoreFactory = {
    fresh: async () => open(await freshDatabase()),
    another: async (store) => open(urls.get(store)!),
    elsewhere: (store) => otherProcess({ url: urls.get(store)! }),
  };
  storeContract('PostgreSQL', pg);
  notifyStoreContract('PostgreSQL', pg);
} else {
  describe.skip(`store contract: PostgreSQL (skipped: ${SKIP_REASON})`, () => {});
}
