import { defineConfig } from 'vitest/config';

// Unit tests are fast and in-process; integration/interop suites start real registries and
// spawn bin/ferry (built by `npm test`'s pretest step), so they get longer timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
