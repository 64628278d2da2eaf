import { configDefaults, defineConfig } from 'vitest/config';

const ROOTS = ['packages/*/test', 'services/*/test', 'test'];
const ALL = ROOTS.map((root) => `${root}/**/*.test.ts`);

/**
 * The e2e suite (`pnpm test:e2e`): tests that start processes — the services as `pnpm auth` /
 * `pnpm checkin` or `pnpm start`, the CLIs, the build, docker-compose, Redis Cluster / Sentinel — or
 * that run for many seconds by design. A file whose in-process part is worth running on every change
 * keeps it, and its process part lives next to it as `<name>.e2e.test.ts`.
 */
export const E2E = [
  ...ROOTS.map((root) => `${root}/**/*.e2e.test.ts`),
  'test/artifact.test.ts', // pnpm build, the image's layout, node dist/main.js
  'test/bench-smoke.test.ts', // the bench, built and run
  'test/compose.test.ts', // docker-compose config
  'test/config.test.ts', // real processes refusing bad configuration
  'test/flow.test.ts', // the README walk-through against `pnpm auth` / `pnpm checkin`
  'test/fresh-machine.test.ts', // `./run start` on a copy of the tree with only Node.js
  'test/seed.test.ts', // the seed and user:add CLIs
  'test/start.test.ts', // `pnpm start`
  'test/start-supervisor.test.ts', // the supervisor with real crashing processes
  'test/reliability/crash-paths.test.ts', // a faulty service process
  'test/reliability/lifecycle.test.ts', // signals to real processes
  'test/reliability/no-lost-checkins.test.ts', // a 10 s chaos run: Redis killed twice
  'test/scale/cluster.test.ts', // a 3-master Redis Cluster
  'test/scale/restarts.test.ts', // service processes and Redis restarted
  'test/scale/sentinel.test.ts', // a Sentinel failover
  'services/checkin/test/startup.test.ts', // `pnpm checkin` start-up
];

// Workspace packages export their TypeScript source under the "ncc-source" condition,
// so tests run the code as written, with no build step in between.
export default defineConfig({
  resolve: { conditions: ['ncc-source'] },
  ssr: { resolve: { conditions: ['ncc-source'], externalConditions: ['ncc-source'] } },
  test: {
    pool: 'forks',
    // Two files at a time for `test:all` and `test:e2e` (process-spawning, timing-sensitive on 2 cores);
    // `pnpm test` runs the in-process suite three at a time (package.json): many of its files mostly wait.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/support/summary-reporter.ts'],
    // `vitest run` runs both; `--project fast` / `--project e2e` one (package.json: test, test:e2e, test:all).
    projects: [
      { extends: true, test: { name: 'fast', include: ALL, exclude: [...configDefaults.exclude, ...E2E] } },
      { extends: true, test: { name: 'e2e', include: E2E } },
    ],
  },
});
