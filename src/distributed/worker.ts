/**
 * ROLE=worker (and all): a BullMQ Worker runs the same procedure as the
 * spool's worker (delivery/run-job.ts) over the job's data and its folder in
 * BLOB_DIR, one attempt per run:
 * - delivered: the job completes (kept for the duplicate window);
 * - 503/429 from Imagicle: a queue-wide rate limit for the backoff delay,
 *   so every worker pauses, and the job goes back to wait;
 * - other retryable outcomes: moveToDelayed with the same backoff;
 * - permanent refusal or held ambiguous outcome: failed (UnrecoverableError),
 *   the answer kept in the job; POST /v1/jobs/{id}/retry brings it back;
 * - SPOOL_MAX_AGE passed: failed, code EXPIRED.
 * A worker that dies loses its lock; BullMQ's stalled check hands the job to
 * another one, which finds the interrupted attempt ("delivering") and counts
 * it as a possible duplicate, exactly as the spool does after a crash.
 */
import { DelayedError, UnrecoverableError, Worker, type Job, type Queue, type RedisOptions } from 'bullmq';
import { GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Deliver } from '../pipeline/ingest.js';
import type { FittedAudio } from '../pipeline/fit.js';
import { JobFolders } from '../delivery/blob-store.js';
import { LeaseLostError } from '../delivery/job-store.js';
import { delayFor } from '../delivery/retry.js';
import { runJob } from '../delivery/run-job.js';
import { DiskLedger } from '../pipeline/disk.js';
import type { DeliverySettings, PrepareSettings } from '../delivery/service.js';
import type { JobError } from '../delivery/spool.js';
import { QUEUE_NAME, summariseRender, type DistributedJob, type RetryProgress } from './job-data.js';
import { QueueJobStore } from './queue-store.js';

export interface DistributedWorkerOptions {
  connection: RedisOptions;
  /** Whoever can set the queue-wide rate limit (the process's Queue). */
  queue: Queue<DistributedJob>;
  folders: JobFolders;
  deliver: Deliver;
  settings: DeliverySettings;
  prepare: PrepareSettings;
  concurrency: number;
  /** How long a job stays locked without renewal: a dead worker's job is taken over after about this (and the stalled check). */
  lockMs: number;
  log: Logger;
}

/** Statuses that mean "Imagicle is busy": every worker pauses, not only the one that got it. */
const BACKPRESSURE_STATUSES = new Set([429, 503]);

/** A stalled job is taken over this many times before BullMQ fails it (each one is a worker lost mid-job). */
const MAX_STALLED = 5;

export function startDistributedWorker(options: DistributedWorkerOptions): Worker<DistributedJob> {
  const { log } = options;
  // What a job writes in BLOB_DIR is reserved before decoding, against the shared folder's free space
  // (MIN_FREE_DISK_BYTES kept free). The ledger is this process's: other workers' renders show up in the free
  // space as they write, and the margin covers the moment between.
  const ledger = new DiskLedger(options.folders.root, {
    label: 'the shared folder (BLOB_DIR)',
    minFreeBytes: options.settings.minFreeDiskBytes ?? 0,
  });
  const worker = new Worker<DistributedJob>(
    QUEUE_NAME,
    (job, token, signal) => processJob(options, ledger, job, token, signal),
    {
      connection: options.connection,
      concurrency: options.concurrency,
      lockDuration: options.lockMs,
      stalledInterval: options.lockMs,
      maxStalledCount: MAX_STALLED,
      // The manual rate limit (queue.rateLimit) only holds workers that have a limiter; this one never limits by itself.
      limiter: { max: 1_000_000, duration: 1000 },
    },
  );
  worker.on('error', (error) => log.error({ err: error }, 'queue worker error'));
  // A lost lock: whatever runs for that job (ffmpeg, an upload) stops; the next holder resumes it.
  worker.on('lockRenewalFailed', (ids) => {
    for (const id of ids) worker.cancelJob(id, 'lock lost');
    log.warn({ jobIds: ids }, 'lost the lock on jobs: another worker takes them over');
  });
  worker.on('stalled', (jobId) =>
    log.warn({ jobId }, 'a stalled job (its worker stopped renewing its lock) was put back in the queue'),
  );
  return worker;
}

async function processJob(
  options: DistributedWorkerOptions,
  ledger: DiskLedger,
  bjob: Job<DistributedJob>,
  token: string | undefined,
  signal: AbortSignal | undefined,
): Promise<{ delivered: true }> {
  if (!token) throw new Error('BullMQ gave no lock token');
  const { settings, folders } = options;
  const job = bjob.data;
  const log = options.log.child({ jobId: job.id });
  const store = new QueueJobStore(bjob, token, folders, options.lockMs);
  log.info({ state: job.state, attempts: job.attempts, takenOver: bjob.stalledCounter > 0 }, 'job taken');

  // Taking over from a worker that died mid-attempt: the spool's rule after a crash (spool.ts, load()).
  let interrupted = 0;
  for (const part of job.parts) {
    if (part.state !== 'delivering') continue;
    part.state = 'pending';
    job.possibleDuplicates += 1;
    interrupted += 1;
  }
  if (job.state === 'delivering') job.state = 'ready';
  if (interrupted > 0) {
    await store.save(job);
    log.warn(
      { interruptedAttempts: interrupted, possibleDuplicates: job.possibleDuplicates },
      'took over a job whose delivery attempt was interrupted',
    );
  }

  if (Date.now() > Date.parse(job.expiresAt)) {
    return failFor(options, bjob, store, {
      at: new Date().toISOString(),
      part: job.lastError?.part,
      status: job.lastError?.status,
      code: 'EXPIRED',
      message: `Not delivered within SPOOL_MAX_AGE (accepted ${job.createdAt}); last error: ${job.lastError?.message ?? 'none'}`,
      body: job.lastError?.body,
      ambiguous: job.lastError?.ambiguous ?? false,
    });
  }

  let retryAfter: string | undefined;
  try {
    const policy = { ...settings.workerPolicy, maxAttempts: 1 };
    const onRendered = (fitted: FittedAudio): void => {
      job.rendered = summariseRender(fitted);
    };
    const run = await runJob(store, options.deliver, job, {
      signal,
      policy,
      prepare: options.prepare,
      log,
      onRendered,
      reservations: () => ledger.scope(),
    });
    switch (run.outcome.kind) {
      case 'delivered':
        await folders.remove(job.id);
        log.info(
          { attempts: job.attempts, parts: job.parts.length, possibleDuplicates: job.possibleDuplicates },
          'job delivered',
        );
        return { delivered: true };
      case 'permanent':
      case 'held':
        log.warn(
          { lastError: job.lastError },
          run.outcome.kind === 'held' ? 'job held: Imagicle may have imported it' : 'job failed',
        );
        return failFor(options, bjob, store, undefined);
      case 'retry-later':
        retryAfter = run.outcome.retryAfter;
        break;
    }
  } catch (error) {
    if (error instanceof LeaseLostError) {
      log.warn('lock lost before a delivery attempt: not attempted, another worker holds the job');
      throw error;
    }
    const gw = toGatewayError(error);
    const lastError: JobError = {
      at: new Date().toISOString(),
      part: undefined,
      status: gw.status,
      code: gw.code,
      message: gw.message,
      body: gw.toBody(),
      ambiguous: false,
    };
    // The gateway's own refusal of the audio cannot change; anything else (ffmpeg crashed, disk) is retried.
    if (error instanceof GatewayError && gw.status < 500 && gw.code !== 'ABORTED') {
      log.warn({ lastError }, 'job failed while being prepared');
      return failFor(options, bjob, store, lastError);
    }
    job.lastError = lastError;
    log.error({ err: error }, 'job run failed; will be retried');
  }
  return retryLater(options, bjob, store, token, retryAfter, log);
}

/** Marks the job failed (answer kept) and ends it for BullMQ without another attempt. */
async function failFor(
  options: DistributedWorkerOptions,
  bjob: Job<DistributedJob>,
  store: QueueJobStore,
  error: JobError | undefined,
): Promise<never> {
  const job = bjob.data;
  if (error) job.lastError = error;
  job.state = 'failed';
  job.failedAt = new Date().toISOString();
  job.nextAttemptAt = undefined;
  await store.save(job);
  // A failed job is no duplicate target (as in the spool): a resend is a new attempt its source chose.
  await bjob.removeDeduplicationKey();
  throw new UnrecoverableError(job.lastError?.message ?? 'failed');
}

async function retryLater(
  options: DistributedWorkerOptions,
  bjob: Job<DistributedJob>,
  store: QueueJobStore,
  token: string,
  retryAfter: string | undefined,
  log: Logger,
): Promise<never> {
  const job = bjob.data;
  const delay = delayFor(options.settings.workerPolicy, Math.max(1, job.attempts), retryAfter);
  job.state = job.parts.length === 0 ? 'received' : 'ready';
  job.nextAttemptAt = new Date(Date.now() + delay).toISOString();
  await store.save(job);
  const progress: RetryProgress = {
    kind: 'retry-later',
    attempts: job.attempts,
    nextAttemptAt: job.nextAttemptAt,
    firstAttemptAt: job.firstAttemptAt,
  };
  await bjob.updateProgress(progress);
  const status = job.lastError?.status;
  // An answer from Imagicle has no error code (run-job.ts, jobError()); the gateway's own errors have one.
  if (status !== undefined && BACKPRESSURE_STATUSES.has(status) && job.lastError?.code === undefined) {
    // Imagicle said "not now": every worker waits, not just this one.
    await options.queue.rateLimit(delay);
    log.info({ attempts: job.attempts, delayMs: delay, status }, 'Imagicle is busy: the queue pauses');
    throw Worker.RateLimitError();
  }
  await bjob.moveToDelayed(Date.now() + delay, token);
  log.info(
    { attempts: job.attempts, nextAttemptAt: job.nextAttemptAt, lastError: job.lastError },
    'job will be retried',
  );
  throw new DelayedError();
}
