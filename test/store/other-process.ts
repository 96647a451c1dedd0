/**
 * Another process on the same database, as another gateway would be. It opens the store (a SQLite
 * file or a PostgreSQL URL), says `ready`, then runs one scenario once per argument list, all at
 * once, and sends back what each returned or threw. IPC: in `{ path }` or `{ url }`, then
 * `{ scenario, calls }`; out `ready`, then `[{ value } | { error }]`.
 */
import type { Persistence } from '../../src/core/persistence.js';
import { PgStore } from '../../src/db/pg-store.js';
import { SqliteStore } from '../../src/db/sqlite-store.js';
import type { OtherProcessTarget } from './elsewhere.js';
import { scenarios, type ScenarioName } from './scenarios.js';

process.once('message', async (target: OtherProcessTarget) => {
  const store: Persistence = 'url' in target ? await PgStore.open(target.url, { migrate: false }) : SqliteStore.open(target.path, { migrate: false });
  process.once('message', async (job: { scenario: ScenarioName; calls: unknown[][] }) => {
    const run = scenarios[job.scenario] as (store: Persistence, ...args: unknown[]) => Promise<unknown>;
    const settled = await Promise.allSettled(job.calls.map((args) => run(store, ...args)));
    await store.close();
    process.send!(settled.map((s) => (s.status === 'fulfilled' ? { value: s.value } : { error: String(s.reason) })), () => process.exit(0));
  });
  process.send!('ready');
});
