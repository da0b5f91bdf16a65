/**
 * A background run's context for tests that call runJob() directly: real ffmpeg, 8 kHz PCM out, one attempt
 * per run, the job-life module of a job kept in memory.
 */
import { pino } from 'pino';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry.js';
import { memoryJobLife } from '../../src/delivery/memory-store.js';
import type { PrepareSettings } from '../../src/delivery/run-job.js';
import { resolveBinaries } from '../../src/media/ffmpeg-tools.js';

export const silentLogger = pino({ level: 'silent' });

export const testPrepare: PrepareSettings = {
  bins: resolveBinaries({}),
  output: { format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 },
  limits: { maxDurationSeconds: 43_200, maxChannelsIn: 16, processTimeoutMs: 60_000 },
  maxPartBytes: 268_435_456,
  oversize: { policy: 'split', compressOrder: ['alaw'], silenceWindowSeconds: 0 },
};

export const oneAttemptContext = {
  signal: undefined,
  policy: { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 },
  prepare: testPrepare,
  log: silentLogger,
  life: memoryJobLife(silentLogger),
};
