/**
 * ROLE=worker (and all): a BullMQ Worker runs the same procedure as the
 * spool's worker (delivery/run-job.ts) over the job's data and its folder in
 * BLOB_DIR, one attempt per run:
 * - delivered: the job completes (kept for the duplicate window);
 * - Imagicle cannot take uploads (503/429, 5xx, no connection): the shared
 *   breaker (shared-breaker.ts, the spool's rule) opens, and the job is
 *   parked (parking.ts) until it closes;
 * - other retryable outcomes: moveToDelayed with the job-life module's backoff;
 * - permanent refusal or held ambiguous outcome: failed (UnrecoverableError),
 *   the answer kept in the job; POST /v1/jobs/{id}/retry brings it back;
 * - SPOOL_MAX_AGE passed: failed, code EXPIRED.
 * While the breaker is not closed, a job taken unprepared is only prepared
 * (conversion, splitting and measurement need no Imagicle) and parked; a
 * prepared job is parked untouched, unless the breaker is half-open and
 * this run wins the one probe turn. The feeder (feeder.ts) brings parked
 * jobs back, oldest first, when the breaker allows.
 * A worker that dies loses its lock; BullMQ's stalled check hands the job to
 * another one, which finds the interrupted attempt ("delivering") and counts
 * it as a possible duplicate, exactly as the spool does after a crash.
 */
import { DelayedError, UnrecoverableError, Worker, type Job, type RedisOptions } from 'bullmq';
import type { Logger } from '../logger.js';
import type { Deliver } from '../pipeline/ingest.js';
import type { FittedAudio } from '../pipeline/fit.js';
import { JobFolders } from '../delivery/blob-store.js';
import { LeaseLostError } from '../delivery/job-store.js';
import { runJob, type RunContext } from '../delivery/run-job.js';
import type { JobLife, Settlement } from '../delivery/job-life.js';
import type { Reconciler } from '../delivery/reconcile-port.js';
import type { JobRecord } from '../delivery/job.js';
import { upstreamTrouble } from '../delivery/breaker.js';
import { DiskLedger } from '../pipeline/disk.js';
import type { DeliverySettings } from '../delivery/service.js';
import type { PrepareSettings } from '../delivery/run-job.js';
import { QUEUE_NAME, summariseRender, type DistributedJob, type RetryProgress } from './job-data.js';
import { holdQueuedJob } from './queue-store.js';
import type { QueueIndex } from './queue-index.js';
import type { ParkingLot } from './parking.js';
import type { ProbeTurn, SharedBreaker } from './shared-breaker.js';

export interface DistributedWorkerOptions {
  connection: RedisOptions;
  folders: JobFolders;
  deliver: Deliver;
  settings: DeliverySettings;
  prepare: PrepareSettings;
  concurrency: number;
  /** How long a job stays locked without renewal: a dead worker's job is taken over after about this (and the stalled check). */
  lockMs: number;
  log: Logger;
  /** The job-life module (job-life.ts): the same one every store's jobs go through. */
  life: JobLife;
  /** The jobs API's indexes, written with every save. */
  index: QueueIndex;
  /** The upstream breaker every worker process shares. */
  breaker: SharedBreaker;
  /** Where prepared jobs wait for the breaker. */
  lot: ParkingLot;
  /** Told when a job run ends here (the feeder tops the wait list up again). */
  onRunEnded?: (() => void) | undefined;
  reconcile?: Reconciler | undefined;
  /** After a part is delivered, before its audio is pruned (the console's waveforms). */
  afterDelivered?: RunContext['afterDelivered'];
}

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
    (job, token, signal) => processJob(options, ledger, job, token, signal).finally(() => options.onRunEnded?.()),
    {
      connection: options.connection,
      concurrency: options.concurrency,
      lockDuration: options.lockMs,
      stalledInterval: options.lockMs,
      maxStalledCount: MAX_STALLED,
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

/** What this run does with its job, from the shared breaker's state. */
type Plan = { kind: 'run'; prepareOnly: boolean; probe: ProbeTurn | undefined } | { kind: 'park' };

async function planFor(options: DistributedWorkerOptions, job: JobRecord): Promise<Plan> {
  const state = await options.breaker.state();
  if (state === 'closed') return { kind: 'run', prepareOnly: false, probe: undefined };
  // Imagicle is not taking uploads: an unprepared job is prepared (no Imagicle needed) and waits.
  if (job.parts.length === 0) return { kind: 'run', prepareOnly: true, probe: undefined };
  const probe = state === 'half-open' ? await options.breaker.tryProbe() : undefined;
  return probe ? { kind: 'run', prepareOnly: false, probe } : { kind: 'park' };
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
  const { store, job, interrupted } = await holdQueuedJob(bjob, token, folders, options.lockMs, options.index);
  const log = options.log.child({ jobId: job.id });
  const { life } = options;
  log.info({ state: job.state, attempts: job.attempts, takenOver: bjob.stalledCounter > 0 }, 'job taken');
  // Taken over from a worker that died mid-attempt: the same rule as the spool's after a crash.
  if (interrupted > 0) {
    log.warn(
      { interruptedAttempts: interrupted, possibleDuplicates: job.possibleDuplicates },
      'took over a job whose delivery attempt was interrupted',
    );
  }

  const expired = life.expiryOf(job);
  if (expired) {
    await life.fail(store, job, expired);
    log.error({ lastError: job.lastError }, 'job expired in the queue');
    return finished(bjob, job);
  }

  const plan = await planFor(options, job);
  if (plan.kind === 'park') return park(options, bjob, token, log);

  let settled: Settlement;
  let preparedOnly = false;
  const attemptsBefore = job.attempts;
  try {
    const policy = { ...settings.workerPolicy, maxAttempts: 1 };
    const onRendered = (fitted: FittedAudio): void => {
      job.rendered = summariseRender(fitted);
    };
    const run = await runJob(store, options.deliver, job, {
      life,
      signal,
      policy,
      prepare: options.prepare,
      log,
      onRendered,
      prepareOnly: plan.prepareOnly,
      reservations: () => ledger.scope(),
      reconcile: options.reconcile,
      afterDelivered: options.afterDelivered,
    });
    settled = await life.settle(store, job, { outcome: run.outcome }, log);
    preparedOnly = run.outcome.kind === 'prepared';
  } catch (error) {
    if (error instanceof LeaseLostError) {
      log.warn('lock lost before a delivery attempt: not attempted, another worker holds the job');
      await plan.probe?.release();
      throw error;
    }
    settled = await life.settle(store, job, { error }, log);
  }
  // Converted, split and measured while Imagicle refuses uploads: it waits for the breaker with the others.
  if (preparedOnly) return park(options, bjob, token, log);
  let waitsForBreaker = false;
  try {
    // Only a run that reached Imagicle tells the breaker anything about it.
    if (job.attempts > attemptsBefore) {
      const after = await options.breaker.record(settled, job.lastError);
      waitsForBreaker = after !== 'closed' && upstreamTrouble(job.lastError);
    }
  } finally {
    await plan.probe?.release();
  }
  switch (settled.kind) {
    case 'delivered':
      // Its audio goes; the folder keeps the console's pictures until retention removes the job (queue-retention.ts).
      await folders.prune(job);
      return { delivered: true };
    case 'failed':
      return finished(bjob, job);
    case 'retry':
      return retryLater(options, bjob, token, waitsForBreaker, log);
  }
}

/** Ends a failed job for BullMQ without another attempt (its record, failed, was saved by the job-life module). */
async function finished(bjob: Job<DistributedJob>, job: JobRecord): Promise<never> {
  // A failed job is no duplicate target (as in the spool): a resend is a new attempt its source chose.
  await bjob.removeDeduplicationKey();
  throw new UnrecoverableError(job.lastError?.message ?? 'failed');
}

/** Waits, parked, for the breaker to let deliveries go: fetched again only when the feeder brings it back. */
async function park(
  options: DistributedWorkerOptions,
  bjob: Job<DistributedJob>,
  token: string,
  log: Logger,
): Promise<never> {
  await options.lot.park(bjob, token);
  log.info({ state: bjob.data.state }, 'waiting for Imagicle: parked until the breaker lets deliveries go');
  throw new DelayedError();
}

/** Back to the queue: parked when Imagicle itself is the trouble, else after the delay the job-life module chose. */
async function retryLater(
  options: DistributedWorkerOptions,
  bjob: Job<DistributedJob>,
  token: string,
  /** This run's attempt failed because Imagicle cannot take uploads, and the breaker is open. */
  waitsForBreaker: boolean,
  log: Logger,
): Promise<never> {
  const job = bjob.data;
  const progress: RetryProgress = {
    kind: 'retry-later',
    attempts: job.attempts,
    nextAttemptAt: job.nextAttemptAt ?? new Date().toISOString(),
    firstAttemptAt: job.firstAttemptAt,
  };
  await bjob.updateProgress(progress);
  // Its next attempt is the breaker's to allow: it waits with the others, in acceptance order.
  if (waitsForBreaker) return park(options, bjob, token, log);
  // When the job-life module said (the record's nextAttemptAt), as the spool schedules it.
  await bjob.moveToDelayed(dueAt(job), token);
  throw new DelayedError();
}

/** When a job scheduled for later is due (epoch ms): its record's nextAttemptAt, which the job-life module set. */
export function dueAt(job: JobRecord, now = Date.now()): number {
  return job.nextAttemptAt !== undefined ? Date.parse(job.nextAttemptAt) : now;
}
