import { defineConfig } from 'vitest/config'

// Layer 3: real PostgreSQL and one real Keycloak shared by every file, so files run one at a time.
export default defineConfig({
  test: {
    include: ['src/**/*.int.test.ts', 'test/**/*.int.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
})
