import { defineConfig } from 'vitest/config';

// The PostgreSQL run (`npm run test:pg`): a throwaway cluster for the run (test/kit/postgres.ts)
// and the suites that need it.
export default defineConfig({
  test: {
    include: ['test/pg/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    globalSetup: ['test/kit/postgres.ts'],
  },
});
