import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'],
    // The e2e suite starts real worker fleets and takes minutes: `pnpm test:e2e`.
    exclude: ['**/node_modules/**', 'test/e2e/**'],
    globalSetup: ['../core/src/testing/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
