import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { storeContract, type StoreFactory } from './contract.js';
import { notifyStoreContract } from './notify-contract.js';
import { otherProcess } from './elsewhere.js';

const dir = tempDir('toolgate-store-');
afterAll(() => dir.remove());
let files = 0;

const sqlite: StoreFactory = {
  fresh: async () => SqliteStore.open(join(dir.path, `store-${++files}.db`)),
  another: async (store) => SqliteStore.open((store as SqliteStore).path, { migrate: false }),
  elsewhere: (store) => otherProcess({ path: (store as SqliteStore).path }),
};
storeContract('SQLite', sqlite);
notifyStoreContract('SQLite', sqlite);
