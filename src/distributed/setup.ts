/**
 * The distributed mode (QUEUE_URL set), loaded only then (gateway.ts imports
 * it dynamically): the queue, the api side (intake + jobs API + queue
 * events) unless ROLE=worker, the BullMQ worker unless ROLE=api, the
 * readiness check and the Redis durability warning.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Queue, QueueEvents, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Deliver } from '../pipeline/ingest.js';
import type { FfmpegBinaries } from '../media/ffmpeg-tools.js';
import type { ProcessGate } from '../media/process.js';
import { JobWaveforms } from '../delivery/waveforms.js';
import { JobFolders } from '../delivery/blob-store.js';
import { writeFileDurable } from '../delivery/durable.js';
import { deliverySettingsFor, type DeliveryTools } from '../delivery/setup.js';
import { JobLife, jobRetention } from '../delivery/job-life.js';
import type { MediaSettings } from '../media-policy.js';
import { DistributedDelivery } from './intake.js';
import { jobsRoot, QUEUE_NAME, type DistributedJob } from './job-data.js';
import { queueJobsBackend } from './queue-jobs.js';
import { QueueIndex } from './queue-index.js';
import { purgeFinishedJobs, sweepStaleTemps } from './queue-retention.js';
import type { JobsBackend } from '../delivery/jobs-backend.js';
import { redisOptionsFrom, warnAboutDurability, withTimeout } from './redis.js';
import { startDistributedWorker } from './worker.js';
import { SharedBreaker } from './shared-breaker.js';
import { ParkingLot } from './parking.js';
import { Feeder } from './feeder.js';

export interface Readiness {
  ok: boolean;
  redis: { ok: boolean; error: string | undefined };
  blobDir: { ok: boolean; error: string | undefined };
}

export interface DistributedRuntime {
  role: 'all' | 'api' | 'worker';
  /** Uploads (undefined under ROLE=worker). */
  delivery: DistributedDelivery | undefined;
  /** The jobs API over the queue (undefined under ROLE=worker). */
  jobs: JobsBackend | undefined;
  ready(): Promise<Readiness>;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 2000;
/**
 * Parked jobs the feeder keeps in the wait list when the breaker is closed: enough that every slot finds a delivery
 * at once, few enough that a breaker opening again sends back only these, not the backlog.
 */
const FEED_WINDOW_PER_SLOT = 4;
const FEED_WINDOW_MIN = 32;
/** How often finished jobs past their retention are removed (as the spool's worker does). */
const PURGE_EVERY_MS = 60_000;

export async function startDistributed(
  config: Config,
  deliver: Deliver,
  bins: FfmpegBinaries,
  logger: Logger,
  media: MediaSettings,
  tools: DeliveryTools = {},
  /** Admission through this process's work queue (by audio size), for the waveform pictures. */
  gateFor?: (bytes: number) => ProcessGate,
): Promise<DistributedRuntime> {
  const settings = config.distributed!;
  const { lockMs } = settings;
  const log = logger.child({ component: 'queue' });
  const connection = redisOptionsFrom(settings.queueUrl);
  const folders = new JobFolders(jobsRoot(settings.blobDir));
  await mkdir(folders.root, { recursive: true, mode: 0o700 });

  // Our own small connection: durability check and readiness; never queues commands while Redis is away.
  const admin = new Redis({ ...connection, enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
  admin.on('error', () => undefined);
  await admin
    .connect()
    .catch((error: unknown) =>
      log.error({ err: error }, 'Redis is not reachable at startup; retrying in the background'),
    );
  await warnAboutDurability(admin, log).catch((error: unknown) =>
    log.warn({ err: error }, 'could not check the Redis durability settings'),
  );

  // Fail fast while Redis is away (BullMQ's advice for producers): an add that cannot be sent now is refused
  // now, instead of waiting in ioredis's offline queue and creating a job after its caller was told 503.
  const queue = new Queue<DistributedJob>(QUEUE_NAME, { connection: { ...connection, enableOfflineQueue: false } });
  queue.on('error', (error) => log.error({ err: error }, 'queue error'));
  const delivery = deliverySettingsFor(config);
  // The jobs API's indexes share the admin connection: it fails fast while Redis is away, like the producer.
  const index = new QueueIndex(() => Promise.resolve(admin));
  const life = new JobLife(
    { workerPolicy: delivery.workerPolicy, maxAgeMs: delivery.maxAgeMs },
    { log, sinks: tools.sinks, metrics: tools.metrics },
  );
  // The console's pictures, in the job's folder in BLOB_DIR: a worker draws part 1's as it is delivered (before its
  // audio goes), any api process draws the others on demand from the shared folder and serves them all.
  const pictures = { jobDir: (id: string) => folders.dirFor(id), tempDir: folders.root };
  const waveforms = new JobWaveforms(pictures, bins, { onDelivery: config.waveformsOnDelivery, gateFor }, log);
  let events: QueueEvents | undefined;
  let intake: DistributedDelivery | undefined;
  let jobs: JobsBackend | undefined;
  if (settings.role !== 'worker') {
    events = new QueueEvents(QUEUE_NAME, { connection });
    events.on('error', (error) => log.error({ err: error }, 'queue events error'));
    await events.waitUntilReady();
    intake = new DistributedDelivery(queue, events, folders, delivery, log, index);
    jobs = queueJobsBackend(queue, index, folders, life, waveforms);
  }
  let worker: Worker<DistributedJob> | undefined;
  let feeder: Feeder | undefined;
  if (settings.role !== 'api') {
    // One breaker for every worker process (the spool's rule, its state in Redis); a probe's turn lasts as long
    // as a dead worker's lock.
    const breaker = new SharedBreaker(admin, delivery.workerPolicy, lockMs, log);
    const lot = new ParkingLot(queue, admin);
    const slots = config.delivery.spoolConcurrency;
    feeder = new Feeder(lot, breaker, Math.max(FEED_WINDOW_MIN, FEED_WINDOW_PER_SLOT * slots), log);
    const feed = feeder;
    worker = startDistributedWorker({
      connection,
      breaker,
      lot,
      onRunEnded: () => feed.kick(),
      folders,
      deliver,
      settings: delivery,
      prepare: { bins, ...media, metrics: tools.metrics },
      concurrency: config.delivery.spoolConcurrency,
      lockMs,
      log,
      life,
      index,
      reconcile: tools.reconcile,
      afterDelivered: (job, part, signal) => waveforms.keep(job, part, signal),
    });
    feeder.start();
  }
  // Every role sweeps (idempotent: a job removed by another process is skipped).
  const retention = jobRetention(delivery.dedupWindowMs, delivery.maxAgeMs);
  const purge = setInterval(() => {
    purgeFinishedJobs(queue, folders, index, retention)
      .then(() => sweepStaleTemps(folders.root))
      .catch((error: unknown) => log.warn({ err: error }, 'removing finished jobs past their retention failed'));
  }, PURGE_EVERY_MS);
  purge.unref();
  log.info(
    {
      role: settings.role,
      queue: QUEUE_NAME,
      blobDir: settings.blobDir,
      concurrency: worker ? config.delivery.spoolConcurrency : 0,
    },
    'distributed mode',
  );

  const ready = async (): Promise<Readiness> => {
    const redis = await withTimeout(admin.ping(), READY_TIMEOUT_MS, 'PING').then(
      () => ({ ok: true, error: undefined }),
      (error: unknown) => ({ ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
    // A write, an fsync and a delete: a read-only or stale share (NFS) fails here.
    const probe = path.join(folders.root, `.ready-${process.pid}`);
    const blobDir = await writeFileDurable(probe, 'ok')
      .then(() => rm(probe, { force: true }))
      .then(
        () => ({ ok: true, error: undefined }),
        (error: unknown) => ({ ok: false, error: (error as NodeJS.ErrnoException).code ?? String(error) }),
      );
    return { ok: redis.ok && blobDir.ok, redis, blobDir };
  };
  const close = async (): Promise<void> => {
    clearInterval(purge);
    feeder?.close();
    await worker?.close();
    await waveforms.close();
    await events?.close();
    await queue.close();
    admin.disconnect();
  };
  return { role: settings.role, delivery: intake, jobs, ready, close };
}
