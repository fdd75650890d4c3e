import { defineConfig } from 'vitest/config';

// Unit tests only (no browser, no network); the end-to-end test has its own config in e2e/.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
