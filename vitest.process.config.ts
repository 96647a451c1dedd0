import { defineConfig } from 'vitest/config';
import { onlyTier, processFiles, tags } from './vitest.tiers.js';

// The process tier (`npm run test:process`): the tests tagged `process` (see vitest.tiers.ts).
export default defineConfig({
  test: {
    include: processFiles,
    tags,
    ...onlyTier('process'),
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    globalSetup: ['test/kit/built-cli.ts'],
  },
});
