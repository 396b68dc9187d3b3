import { defineConfig } from 'vitest/config';

// Each suite is a project so the slow, cluster-backed ones get their own
// global setup and timeouts. The `source` condition lets one workspace import
// another's TypeScript directly (under ssr too: tests run in Vite's server
// environment, which otherwise resolves to the other workspace's stale dist/).
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['rtmpd/src/**/*.test.ts', 'operator/src/**/*.test.ts', 'hack/generate/*.test.ts', 'hack/docs/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'cluster',
          include: ['e2e/cluster/**/*.test.ts'],
          globalSetup: ['e2e/cluster/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'operator',
          include: ['operator/test/**/*.test.ts'],
          globalSetup: ['e2e/cluster/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: { name: 'observability', include: ['e2e/observability/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 180_000 },
      },
      {
        extends: true,
        test: {
          name: 'chart',
          include: ['e2e/chart/**/*.test.ts'],
          globalSetup: ['e2e/cluster/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'fleet',
          include: ['e2e/fleet/**/*.test.ts'],
          globalSetup: ['e2e/cluster/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e-local',
          include: ['e2e/local/**/*.test.ts'],
          globalSetup: ['e2e/cluster/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: { name: 'e2e-scripts', include: ['e2e/kind/**/*.test.ts', 'e2e/lib/**/*.test.ts'], testTimeout: 60_000 },
      },
      {
        extends: true,
        test: { name: 'bench-smoke', include: ['hack/bench/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 60_000 },
      },
      {
        extends: true,
        test: {
          name: 'console',
          include: ['rtmpd/console/test/**/*.test.ts'],
          globalSetup: ['rtmpd/console/test/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: { name: 'rtmpd-integration', include: ['rtmpd/test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 },
      },
    ],
  },
});
