import { defineConfig } from 'vitest/config'

// Layers 1-2: pure functions and the app driven through app.request() with fakes. No Keycloak.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/*.int.test.ts', 'node_modules/**'],
    testTimeout: 20_000,
  },
})
