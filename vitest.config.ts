import os from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Most files wait on child processes, sockets and timers more than they compute: one file per core (vitest's
    // default is cores - 1, a single worker on a 2-core CI machine) keeps the run well under 15 minutes.
    maxWorkers: Math.max(2, os.availableParallelism()),
  },
});
