/**
 * ROLE=api (and all): what DeliveryService.accept() does with the spool,
 * done over the queue. The upload is hashed (while it streamed in), moved
 * durably into BLOB_DIR/jobs/<id>/, and enqueued with BullMQ's
 * deduplication (owner + pbxCallId + audio hashes, for DEDUP_WINDOW), so two
 * api processes that get the same recording at once make one job. The
 * caller then waits for that job as it would for the spool's (render +
 * RETRY_MAX_ATTEMPTS / RETRY_MAX_TOTAL_MS), or gets 202 + Location.
 */
import { randomUUID } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { insufficientStorage } from '../pipeline/disk.js';
import type { Job, Queue, QueueEvents } from 'bullmq';
import { aborted, busy, GatewayError, isErrorCode, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { metadataForPart, type IngestResult, type PartDelivery } from '../pipeline/ingest.js';
import type { FittedAudio } from '../pipeline/fit.js';
import type { PreparedAudio } from '../pipeline/prepared.js';
import type { JobFolders } from '../delivery/blob-store.js';
import { sha256File } from '../delivery/dedup.js';
import type { AcceptRequest, AcceptResult, DeliverySettings } from '../delivery/service.js';
import type { AudioInput } from '../pipeline/prepared.js';
import { deduplicationId, JOB_NAME, type DistributedJob } from './job-data.js';
import { newJobRecord } from '../delivery/job-life.js';
import { withTimeout } from './redis.js';
import { isParked, PREPARE_PRIORITY } from './parking.js';
import type { QueueIndex } from './queue-index.js';

/** How long an upload waits for Redis to take its job before it is refused with 503. */
const ENQUEUE_TIMEOUT_MS = 15_000;
/** Besides the queue's events: how often a waiting request looks at its job (events can be lost in a reconnect). */
const POLL_MS = 1000;

type Check = () => void;

export class DistributedDelivery {
  private readonly waiters = new Map<string, Set<Check>>();

  constructor(
    private readonly queue: Queue<DistributedJob>,
    events: QueueEvents,
    private readonly folders: JobFolders,
    readonly settings: DeliverySettings,
    private readonly log: Logger,
    private readonly index: QueueIndex,
  ) {
    const poke = ({ jobId }: { jobId: string }): void => {
      for (const check of this.waiters.get(jobId) ?? []) check();
    };
    events.on('completed', poke);
    events.on('failed', poke);
    events.on('progress', poke);
    events.on('removed', poke);
  }

  /**
   * Refuses at once (507) an upload whose declared size cannot fit in BLOB_DIR (its free space less
   * MIN_FREE_DISK_BYTES), rather than after writing it all to TMP_DIR. Beyond that, the shared folder's space is
   * the operator's to bound (docs/scaling.md).
   */
  checkCapacity(declaredBytes?: number): void {
    if (declaredBytes === undefined) return;
    let free: number;
    try {
      const fs = statfsSync(this.folders.root);
      free = fs.bavail * fs.bsize - (this.settings.minFreeDiskBytes ?? 0);
    } catch {
      return;
    }
    if (declaredBytes > free) {
      throw insufficientStorage(
        `The upload (${declaredBytes} bytes) cannot fit in the shared folder (BLOB_DIR: ${Math.max(0, free)} bytes free); retry later`,
      );
    }
  }

  async accept(r: AcceptRequest): Promise<AcceptResult> {
    const { settings } = this;
    // Workers may run on other machines: they read what BLOB_DIR holds, never a path on this one.
    if (r.audio.source || r.remoteAudio?.source) throw new Error('a recording referenced in place cannot be queued');
    const hashOf = async (input: AudioInput): Promise<string> => input.sha256 ?? (await sha256File(input.path));
    const hashes = [await hashOf(r.audio), ...(r.remoteAudio ? [await hashOf(r.remoteAudio)] : [])];
    const owner = r.owner ?? 'anonymous';
    const dedupId = settings.dedupWindowMs > 0 ? deduplicationId(owner, r.metadata, hashes) : undefined;

    const id = randomUUID();
    const inputs = await this.folders.storeInputs(id, { attachment: r.audio, remoteAttachment: r.remoteAudio });
    const now = new Date();
    const record = newJobRecord(
      {
        mode: r.mode,
        door: r.door ?? 'http',
        callbackUrl: r.callbackUrl,
        requestId: r.requestId,
        owner,
        async: r.preferAsync,
        expiresAt: new Date(now.getTime() + settings.maxAgeMs).toISOString(),
        metadata: r.metadata,
        stereoOptions: r.stereoOptions,
        callerAuthorization: settings.keepCallerAuthorization ? r.callerAuthorization : undefined,
        dedupKey: dedupId,
        audioSha256: hashes[0],
        contentType: undefined,
        decision: undefined,
      },
      inputs,
      now,
      id,
    );
    const job: DistributedJob = { ...record, owner, firstAttemptAt: undefined, rendered: undefined };
    let added: Job<DistributedJob>;
    try {
      added = await this.enqueue(job, dedupId);
    } catch (error) {
      await this.folders.remove(id).catch(() => undefined);
      r.log.error({ err: error }, 'enqueueing the job failed');
      throw busy('The gateway cannot reach its job queue right now; retry later', 30);
    }
    if (added.id !== id) {
      // BullMQ answered with the job that already holds this deduplication id: this upload is its duplicate.
      await this.folders.remove(id);
      return { kind: 'duplicate', first: recordOf(added) };
    }
    await this.index.record(job).catch((error: unknown) => {
      // The job is queued and will be delivered; the worker's first save indexes it if this write failed.
      r.log.warn({ err: error, jobId: id }, 'indexing the queued job failed');
    });
    r.log.info({ jobId: id, async: r.preferAsync }, 'job queued');
    if (r.preferAsync) return { kind: 'accepted', job, async: true };
    return this.waitFor(id, r);
  }

  private async enqueue(job: DistributedJob, dedupId: string | undefined): Promise<Job<DistributedJob>> {
    const add = (): Promise<Job<DistributedJob>> =>
      withTimeout(
        this.queue.add(JOB_NAME, job, {
          jobId: job.id,
          // Behind the deliveries of prepared jobs (parking.ts): the oldest recordings leave first.
          priority: PREPARE_PRIORITY,
          ...(dedupId ? { deduplication: { id: dedupId, ttl: this.settings.dedupWindowMs } } : {}),
          // Finished jobs go by the one retention rule, with their folders and index entries (queue-retention.ts).
          removeOnComplete: false,
          removeOnFail: false,
        }),
        ENQUEUE_TIMEOUT_MS,
        'enqueue',
      );
    const added = await add();
    if (added.id === job.id || !dedupId) return added;
    // The key may name a job removed since (DELETE, retention): then it is not a duplicate.
    const first = await this.queue.getJob(added.id!);
    if (first && (await first.getState()) !== 'failed') return first;
    await this.queue.removeDeduplicationKey(dedupId);
    return add();
  }

  /** Waits for the job's fate within the in-request budget; the caller leaving ends the wait, not the job. */
  private waitFor(id: string, r: AcceptRequest): Promise<AcceptResult> {
    return new Promise<AcceptResult>((resolve, reject) => {
      let checking = false;
      let again = false;
      const finish = (): void => {
        clearInterval(timer);
        r.signal.removeEventListener('abort', onAbort);
        const set = this.waiters.get(id);
        set?.delete(check);
        if (set?.size === 0) this.waiters.delete(id);
      };
      const check: Check = () => {
        if (checking) {
          again = true;
          return;
        }
        checking = true;
        this.decide(id, r)
          .then((result) => {
            if (!result) return;
            finish();
            resolve(result);
          })
          .catch((error: unknown) => {
            finish();
            reject(error);
          })
          .finally(() => {
            checking = false;
            if (again) {
              again = false;
              check();
            }
          });
      };
      const onAbort = (): void => {
        finish();
        reject(aborted('The caller went away; the job stays queued'));
      };
      const timer = setInterval(check, POLL_MS);
      timer.unref();
      r.signal.addEventListener('abort', onAbort, { once: true });
      const set = this.waiters.get(id) ?? new Set<Check>();
      set.add(check);
      this.waiters.set(id, set);
      check();
    });
  }

  /** What the waiting caller gets now, or undefined to keep waiting. */
  private async decide(id: string, r: AcceptRequest): Promise<AcceptResult | undefined> {
    const bjob = await this.queue.getJob(id);
    if (!bjob) {
      const message = `Job ${id} was removed while the upload waited for it`;
      throw new GatewayError('NOT_FOUND', message);
    }
    const state = await bjob.getState();
    const job = recordOf(bjob);
    const policy = this.settings.policy;
    // No render summary (cannot happen with this worker, which saves it with the parts): the job's 202 view.
    const finishedWithoutSummary =
      !job.rendered && (state === 'completed' || (state === 'failed' && job.parts.length > 0));
    if (finishedWithoutSummary) return { kind: 'accepted', job, async: false };
    if (state === 'completed') return { kind: 'done', job, outcome: 'delivered', result: resultOf(job) };
    if (state === 'failed') {
      if (job.state !== 'failed') return { kind: 'accepted', job, async: false };
      const error = job.lastError;
      const gatewayRefusal = error?.code !== undefined && error.code !== 'EXPIRED' && (error.status ?? 500) < 500;
      if (gatewayRefusal && job.parts.length === 0) {
        // The gateway's own refusal (bad audio, too long, …): nothing was accepted, as in the spooled mode.
        await this.forget(bjob);
        throw new GatewayError(isErrorCode(error!.code) ? error!.code : 'BAD_AUDIO', error!.message);
      }
      if (error?.ambiguous) return { kind: 'done', job, outcome: 'held', result: resultOf(job) };
      // Refused by Imagicle for good: the caller gets the answer; the job stays listed as failed (as in the spool).
      return { kind: 'done', job, outcome: 'permanent', result: resultOf(job) };
    }
    // Parked until Imagicle takes uploads again (the breaker): its next attempt has no time of its own. Never
    // tried (the outage was known before it): 202 now; else once the in-request budget is spent.
    if (state === 'delayed' && isParked(bjob)) {
      const started = Date.parse(job.firstAttemptAt ?? job.createdAt);
      const spent = job.attempts >= policy.maxAttempts || Date.now() - started > policy.maxTotalMs;
      if (job.attempts === 0 || spent) return { kind: 'accepted', job, async: false };
    }
    if (job.nextAttemptAt !== undefined && job.attempts > 0) {
      const started = Date.parse(job.firstAttemptAt ?? job.createdAt);
      if (job.attempts >= policy.maxAttempts || Date.parse(job.nextAttemptAt) - started > policy.maxTotalMs) {
        return { kind: 'accepted', job, async: false };
      }
    }
    if (r.signal.aborted) throw aborted();
    return undefined;
  }

  private async forget(bjob: Job<DistributedJob>): Promise<void> {
    await bjob.remove().catch((error: unknown) => {
      this.log.warn({ err: error, jobId: bjob.id }, 'removing a refused job failed');
    });
    await this.folders.remove(bjob.data.id);
  }
}

/** The job's record as the worker last saved it (BullMQ keeps it as the job's data). */
function recordOf(bjob: Job<DistributedJob>): DistributedJob {
  return bjob.data;
}

/** A stored delivery failure's code in the error table (stored codes may be undici's or the OS's). */
function upstreamFailureCode(code: string | undefined, status: number | undefined): ErrorCode {
  if (isErrorCode(code)) return code;
  return status === 504 ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNREACHABLE';
}

/**
 * The answer code's view of a finished job (http/answer.ts words it), from
 * what the worker recorded: the render summary, each part's stored answer,
 * and the last error for a part Imagicle did not answer.
 */
function resultOf(job: DistributedJob): IngestResult {
  const rendered = job.rendered;
  const prepared = (rendered ? { ...rendered.prepared, path: '' } : undefined) as PreparedAudio | undefined;
  const parts = job.parts.map((p) => ({ ...p, path: '' }));
  const fitted: FittedAudio | undefined = prepared ? { prepared, parts, oversize: rendered!.oversize } : undefined;
  const deliveries: PartDelivery[] = job.parts.map((p, i) => {
    const failedHere = job.lastError && p.state !== 'delivered' && (job.lastError.part ?? 1) === p.index;
    return {
      part: parts[i]!,
      metadata: p.metadata ?? metadataForPart(job.metadata, parts[i]!),
      upstream: p.upstream ? { ...p.upstream, retryAfter: undefined, elapsedMs: 0 } : undefined,
      error:
        !p.upstream && failedHere
          ? new GatewayError(upstreamFailureCode(job.lastError!.code, job.lastError!.status), job.lastError!.message)
          : undefined,
      delivered: p.state === 'delivered',
      attempted: p.attempts > 0,
    };
  });
  return {
    prepared: prepared as PreparedAudio,
    fitted: fitted as FittedAudio,
    deliveries,
    complete: deliveries.every((d) => d.delivered),
    deliverMs: 0,
  };
}
