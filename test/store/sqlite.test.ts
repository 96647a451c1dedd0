import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { storeContract } from './contract.js';

const dir = tempDir('toolgate-store-');
afterAll(() => dir.remove());
let files = 0;
const OTHER_PROCESS = fileURLToPath(new URL('./other-process.ts', import.meta.url));

storeContract('SQLite', {
  fresh: async () => SqliteStore.open(join(dir.path, `store-${++files}.db`)),
  another: async (store) => SqliteStore.open((store as SqliteStore).path, { migrate: false }),
  elsewhere: (store) =>
    new Promise((ready, failed) => {
      const child = fork(OTHER_PROCESS, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the other process exited ${code} before answering`))));
      exited.catch(failed);
      child.once('error', failed);
      child.once('message', () =>
        ready({
          run: (scenario, calls) => {
            const answered = new Promise<unknown[]>((resolve, reject) =>
              child.once('message', (results: { value?: unknown; error?: string }[]) => {
                const error = results.find((r) => r.error !== undefined);
                if (error) reject(new Error(`in the other process: ${error.error}`));
                else resolve(results.map((r) => r.value));
              }),
            );
            child.send({ scenario, calls });
            return Promise.race([answered, exited]);
          },
        }),
      );
      child.send({ path: (store as SqliteStore).path });
    }),
});
