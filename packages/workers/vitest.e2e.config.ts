import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.spec.ts'],
    globalSetup: ['../core/src/testing/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Each spec runs a fleet of processes; running them side by side would skew every figure.
    fileParallelism: false,
  },
});
