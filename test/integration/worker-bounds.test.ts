/**
 * A held or async job never loops on an error no retry can fix: a
 * preparation that keeps failing for a reason of the gateway's own (here,
 * its spooled input is gone) is failed after MAX_PREPARE_FAILURES attempts,
 * while its answer stays available in the jobs API.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Spool } from '../../src/delivery/spool.js';
import { DeliveryService } from '../../src/delivery/service.js';
import { DeliveryWorker } from '../../src/delivery/worker.js';
import { MAX_PREPARE_FAILURES } from '../../src/delivery/job-life.js';
import { DEFAULT_RETRY_POLICY } from '../../src/delivery/retry.js';
import { resolveBinaries } from '../../src/media/ffmpeg-tools.js';
import { SAMPLE_METADATA } from '../helpers/gateway.js';
import type { RecordingMetadata } from '../../src/imagicle/schema.js';

const logger = pino({ level: 'silent' });
let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'worker-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

it(`fails a job after ${MAX_PREPARE_FAILURES} failed preparations rather than retry until SPOOL_MAX_AGE`, async () => {
  const { spool } = await Spool.open({ dir: path.join(root, 'spool'), deliveredRetentionMs: 1000, logger });
  const policy = { ...DEFAULT_RETRY_POLICY, minDelayMs: 5, maxDelayMs: 20 };
  let delivered = 0;
  const service = new DeliveryService(
    spool,
    () => {
      delivered += 1;
      return Promise.reject(new Error('never reached'));
    },
    {
      policy,
      workerPolicy: policy,
      maxAgeMs: 3 * 86_400_000,
      maxBytes: 1e9,
      dedupWindowMs: 0,
      dedupAnswer: 'replay',
      keepCallerAuthorization: false,
    },
    logger,
  );
  const input = path.join(root, 'call.wav');
  await writeFile(input, Buffer.alloc(1000, 1));
  const job = await spool.create(
    {
      mode: 'native',
      requestId: 'r1',
      async: true,
      owner: 'key:0123456789ab',
      expiresAt: new Date(Date.now() + 3 * 86_400_000).toISOString(),
      metadata: SAMPLE_METADATA as RecordingMetadata,
      stereoOptions: undefined,
      callerAuthorization: undefined,
      dedupKey: undefined,
      audioSha256: undefined,
      contentType: undefined,
      decision: undefined,
    },
    { attachment: { path: input, originalName: 'call.wav', extension: 'wav' } },
  );
  // The input disappears from the spool: no retry can bring it back.
  await rm(path.join(spool.jobDir(job.id), job.inputs.attachment.file));
  spool.release(job.id);
  const worker = new DeliveryWorker(
    service,
    {
      concurrency: 1,
      pollMs: 10,
      prepare: {
        bins: resolveBinaries({}),
        output: { format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 },
        limits: { maxDurationSeconds: 43_200, maxChannelsIn: 16, processTimeoutMs: 60_000 },
        maxPartBytes: 268_435_456,
        oversize: { policy: 'split', compressOrder: ['alaw'], silenceWindowSeconds: 0 },
      },
    },
    logger,
  );
  worker.start();
  try {
    for (let i = 0; i < 300 && spool.get(job.id)?.state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 10));
  } finally {
    await worker.close();
  }
  const failed = spool.get(job.id)!;
  expect(failed.state).toBe('failed');
  expect(failed.prepareFailures).toBe(MAX_PREPARE_FAILURES);
  expect(failed.lastError).toMatchObject({ status: 500, code: 'INTERNAL' });
  expect(delivered).toBe(0);
});
