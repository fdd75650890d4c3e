import { defineConfig } from 'vitest/config';

// The end-to-end test: a real Chromium against the full local stack (see run.sh). One file, its
// steps in order (each depends on the previous one), bounded timeouts everywhere.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    bail: 1,
  },
});
