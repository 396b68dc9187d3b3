import { defineConfig } from 'vitest/config';
export default defineConfig({
  root: '/work/main',
  resolve: { conditions: ['source'] },
  test: {
    projects: [{ extends: true, test: { name: 'operator', include: ['operator/test/**/*.test.ts'], globalSetup: ['e2e/cluster/global-setup.ts'], testTimeout: 120_000, hookTimeout: 180_000 } }],
  },
});
