import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript source under the "ncc-source" condition,
// so tests run the code as written, with no build step in between.
export default defineConfig({
  resolve: { conditions: ['ncc-source'] },
  ssr: { resolve: { conditions: ['ncc-source'], externalConditions: ['ncc-source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
