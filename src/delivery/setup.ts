/**
 * Builds delivery from the configuration: one plain Deliver (DELIVERY=sync
 * runs it through run-job.ts in memory: delivery/direct.ts), and under
 * DELIVERY=wait the spool, the service and its background worker, resumed
 * from disk.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { UpstreamClient } from '../imagicle/client.js';
import type { FfmpegBinaries } from '../media/ffmpeg-tools.js';
import type { ProcessGate } from '../media/process.js';
import type { Deliver } from '../pipeline/ingest.js';
import { DeliveryService, type DeliverySettings } from './service.js';
import type { PrepareSettings } from './run-job.js';
import { Spool } from './spool.js';
import { jobRetention, type JobRetention } from './job-life.js';
import { DeliveryWorker } from './worker.js';
import { JobWaveforms } from './waveforms.js';
import type { GatewayMetrics } from '../metrics.js';
import type { JobEventSink } from './job-event-sink.js';
import type { Reconciler } from './reconcile-port.js';
import { mediaPolicyOf, type MediaSettings } from '../media-policy.js';

/** What every backend's job life is built with, once per process (gateway.ts). */
export interface DeliveryTools {
  /** Followers of the job-life module's events (webhooks, ...). */
  sinks?: readonly JobEventSink[] | undefined;
  metrics?: GatewayMetrics | undefined;
  /** RECONCILE=auto: asks Imagicle before a part whose outcome is unknown is sent again. */
  reconcile?: Reconciler | undefined;
}

export interface DeliveryRuntime {
  /** Undefined under DELIVERY=sync. */
  service: DeliveryService | undefined;
  /** One plain attempt (the retry policy is applied by run-job.ts). */
  deliver: Deliver;
  close(): Promise<void>;
}

/** The spool's retention options from the one rule (job-life.ts). */
function spoolRetention(retention: JobRetention): { deliveredRetentionMs: number; failedRetentionMs: number } {
  return { deliveredRetentionMs: retention.deliveredMs, failedRetentionMs: retention.failedMs };
}

type OpenedSpool = Awaited<ReturnType<typeof Spool.open>>;

/**
 * Opens the spool of DELIVERY=wait (undefined under DELIVERY=sync). The gateway starts it before it checks ffmpeg,
 * so that the two overlap (issue 21: restart to ready); startDelivery() takes the promise.
 */
export function openSpool(config: Config, logger: Logger): Promise<OpenedSpool> | undefined {
  const { delivery } = config;
  if (delivery.mode === 'sync') return undefined;
  return Spool.open({
    dir: delivery.spoolDir,
    ...spoolRetention(jobRetention(delivery.dedupWindowMs, delivery.spoolMaxAgeMs)),
    logger: logger.child({ component: 'spool' }),
  });
}

export async function startDelivery(
  config: Config,
  upstream: UpstreamClient,
  bins: FfmpegBinaries,
  logger: Logger,
  gateFor?: (bytes: number) => ProcessGate,
  tools: DeliveryTools = {},
  media: MediaSettings = mediaPolicyOf(config),
  /** openSpool()'s promise, when the caller started it earlier; none: opened here. */
  opening: Promise<OpenedSpool> | undefined = openSpool(config, logger),
): Promise<DeliveryRuntime> {
  const { metrics } = tools;
  const direct: Deliver = (upload) => upstream.postRecording(upload);
  // DELIVERY=sync: http/app.ts runs the same procedure over a job kept in memory (delivery/direct.ts).
  if (config.delivery.mode === 'sync' || !opening) {
    return { service: undefined, deliver: direct, close: async () => undefined };
  }
  const { delivery } = config;
  const log = logger.child({ component: 'spool' });
  const { spool, summary } = await opening;
  const service = new DeliveryService(spool, direct, deliverySettingsFor(config), log, tools);
  service.reconcile = tools.reconcile;
  // Followers that were not told of an event (a crash between the journal write and the hand-over) are told
  // again: sinks are idempotent on the event's id (job-events.ts). In the spool's own order (oldest first after
  // the load): list() would copy and sort every job for nothing.
  for (const job of spool.all()) if (job.events?.length) service.life.publish(job, job.events);
  const prepare: PrepareSettings = { bins, ...media, metrics };
  metrics?.watch({ spool });
  const pictures = { jobDir: (id: string) => spool.jobDir(id), tempDir: spool.dir };
  service.waveforms = new JobWaveforms(pictures, bins, { onDelivery: config.waveformsOnDelivery, gateFor }, log);
  const worker = new DeliveryWorker(
    service,
    {
      concurrency: delivery.spoolConcurrency,
      pollMs: Math.min(1000, Math.max(20, delivery.retry.minDelayMs)),
      prepare,
      ...(gateFor ? { gateFor } : {}),
    },
    log,
  );
  log.info(
    { spool: delivery.spoolDir, bytes: spool.usedBytes(), ...summary, possibleDuplicates: summary.interruptedAttempts },
    'spool opened',
  );
  worker.start();
  const waveforms = service.waveforms;
  return {
    service,
    deliver: direct,
    close: async () => {
      await worker.close();
      await waveforms.close();
      await spool.close();
    },
  };
}

/** The delivery policy as data, shared by the spool and the distributed mode. */
export function deliverySettingsFor(config: Config): DeliverySettings {
  const { delivery } = config;
  return {
    policy: delivery.retry,
    workerPolicy: { ...delivery.retry, maxDelayMs: Math.max(delivery.retry.maxDelayMs, delivery.spoolRetryMaxDelayMs) },
    maxAgeMs: delivery.spoolMaxAgeMs,
    maxBytes: delivery.spoolMaxBytes,
    dedupWindowMs: delivery.dedupWindowMs,
    dedupAnswer: delivery.dedupAnswer,
    keepCallerAuthorization: config.imagicleCredentials === undefined,
    minFreeDiskBytes: config.bounds.minFreeDiskBytes,
  };
}
