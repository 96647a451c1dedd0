/**
 * Another process on the same SQLite file, as another gateway on the machine would be. It opens the
 * file, says `ready`, then runs one scenario once per argument list, all at once, and sends back
 * what each returned or threw. IPC: in `{ path }` then `{ scenario, calls }`; out `ready`, then
 * `[{ value } | { error }]`.
 */
import { SqliteStore } from '../../src/db/sqlite-store.js';
import { scenarios, type ScenarioName } from './scenarios.js';

process.once('message', ({ path }: { path: string }) => {
  const store = SqliteStore.open(path, { migrate: false });
  process.once('message', async (job: { scenario: ScenarioName; calls: unknown[][] }) => {
    const run = scenarios[job.scenario] as (store: SqliteStore, ...args: unknown[]) => Promise<unknown>;
    const settled = await Promise.allSettled(job.calls.map((args) => run(store, ...args)));
    await store.close();
    process.send!(settled.map((s) => (s.status === 'fulfilled' ? { value: s.value } : { error: String(s.reason) })), () => process.exit(0));
  });
  process.send!('ready');
});
