import { defineConfig } from 'vitest/config';
import { onlyTier, processOnlyFiles, tags } from './vitest.tiers.js';

// The fast tier (`npm test`): everything not tagged `process` (see vitest.tiers.ts) and not chaos.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/chaos/**', 'test/browser/**', 'test/pg/**', ...processOnlyFiles],
    tags,
    ...onlyTier('fast'),
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
  },
});
