import { defineConfig } from 'vitest/config';
import { pgBinDir } from './test/kit/pg-bin.js';
import { onlyTier, processOnlyFiles, tags } from './vitest.tiers.js';

// The PostgreSQL run (`npm run test:pg`): a throwaway cluster for the run (test/kit/postgres.ts),
// the suites that need it (test/pg/), and the whole fast tier again with every test gateway on a
// fresh PostgreSQL database of its own (TOOLGATE_TEST_STORE, read by test/helpers.ts).
export default defineConfig({
  test: {
    // Without PostgreSQL (and without CI=1, where test/kit/postgres.ts fails the run instead) only
    // test/pg/ loads, to say that it skips: the fast tier would merely run again on SQLite.
    include: pgBinDir() || process.env.CI ? ['test/**/*.test.ts'] : ['test/pg/**/*.test.ts'],
    // Not here: the SQLite store's own suites (its contract run, group commit) and the schema parity test, and
    // the core's unit tests, which open their own SQLite store and drive the expiry timers with a fake
    // setTimeout that would also freeze postgres.js's (it connects on a timer); the gateway suites
    // here run the same core on PostgreSQL.
    exclude: ['test/chaos/**', 'test/browser/**', 'test/store/sqlite.test.ts', 'test/store/group-commit.test.ts', 'test/db/**', 'test/approvals/core.test.ts', ...processOnlyFiles],
    tags,
    ...onlyTier('fast'),
    env: { TOOLGATE_TEST_STORE: 'postgres' },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    globalSetup: ['test/kit/postgres.ts'],
  },
});
