import { defineConfig } from 'vitest/config';

// The browser tier (`npm run test:browser`): the web console end to end in Chromium (test/browser/).
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One Chromium at a time: the machines running CI have few cores.
    fileParallelism: false,
  },
});
