import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // GPU tests compile pipelines on a 2-core CPU (lavapipe): forks keep Dawn in separate processes,
    // and two at a time match the cores.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Tests never read or write the user's kernel-tuning cache.
    env: { WHYLESION_TUNING_FILE: join(tmpdir(), `whylesion-test-kernel-tuning-${process.pid}.json`) },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
