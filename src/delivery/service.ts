/**
 * Spooled delivery (DELIVERY=wait): the use case around the spool.
 *
 * accept(): dedup check → spool the raw upload (state received; its bytes
 * fsynced before any 202, see docs/delivery.md) →
 * either 202 at once (Prefer: respond-async) or prepare + deliver in the
 * request with the in-request retry policy. What Imagicle did not take
 * stays in the spool for the worker (worker.ts).
 *
 * runJob(): the one procedure both the request and the worker run:
 * received → (prepare, fit) → ready → each part in order, each attempt
 * journaled before it starts (part "delivering") and after it ends.
 */
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import { busy, GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { UpstreamResponse } from '../imagicle/client.js';
import type { RecordingMetadata } from '../imagicle/schema.js';
import { metadataForPart, type Deliver, type IngestResult, type PartDelivery } from '../pipeline/ingest.js';
import type { AudioInput } from '../pipeline/prepared.js';
import type { StereoRequestOptions } from '../pipeline/stereo-policy.js';
import { dedupKey, sha256File, type DedupAnswer } from './dedup.js';
import type { SourceReference } from '../source-reference.js';
import type { RetryPolicy } from './retry.js';
import { JobLife } from './job-life.js';
import type { JobEventSink } from './job-event-sink.js';
import type { Reconciler } from './reconcile-port.js';
import type { GatewayMetrics } from '../metrics.js';
import { persistFiles, runJob, type PrepareSettings, type RunContext, type RunResult } from './run-job.js';
import type { RunOutcome } from './job-life.js';
import { DiskLedger } from '../pipeline/disk.js';
import type { Spool } from './spool.js';
import type { JobDoor, JobMode, JobRecord, SpooledPart, StoredAnswer } from './job.js';
import type { JobWaveforms } from './waveforms.js';

export interface DeliverySettings {
  /** In-request retries (RETRY_*). */
  policy: RetryPolicy;
  /** Background retries: the same policy, with SPOOL_RETRY_MAX_DELAY_MS as the cap on one delay. */
  workerPolicy: RetryPolicy;
  maxAgeMs: number;
  maxBytes: number;
  dedupWindowMs: number;
  dedupAnswer: DedupAnswer;
  /** MIN_FREE_DISK_BYTES: free space kept on the spool's file system. */
  minFreeDiskBytes?: number;
  /** The gateway has no Imagicle credentials: the caller's Authorization must be kept to deliver later. */
  keepCallerAuthorization: boolean;
}

/** A recording as a door hands it over: a file the store takes in, or (a watched folder's) one it references where it is. */
export type DoorAudio = AudioInput & { source?: SourceReference | undefined };

export interface AcceptRequest {
  mode: JobMode;
  requestId: string;
  log: Logger;
  signal: AbortSignal;
  preferAsync: boolean;
  metadata: RecordingMetadata;
  audio: DoorAudio;
  remoteAudio: DoorAudio | undefined;
  stereoOptions: StereoRequestOptions | undefined;
  callerAuthorization: string | undefined;
  prepare: PrepareSettings;
  /** Who sends it (http/owner.ts): recorded on the job, part of the duplicate key. */
  owner: string;
  /** How the recording came: an upload (default), the import command, the watched folder. */
  door?: JobDoor | undefined;
  /** The caller's own webhook for this recording (a host WEBHOOK_ALLOWED_HOSTS allows: checked by the door). */
  callbackUrl?: string | undefined;
  /** Told the job's id as soon as it is spooled (the request's log lines name it from then on). */
  onJob?: ((jobId: string) => void) | undefined;
}

export type AcceptResult =
  | { kind: 'duplicate'; first: JobRecord }
  /** Spooled, not (yet) delivered: 202. */
  | { kind: 'accepted'; job: JobRecord; async: boolean }
  /** Handled in the request: delivered, refused for good (permanent) or held (ambiguous, not retried). */
  | { kind: 'done'; job: JobRecord; outcome: 'delivered' | 'permanent' | 'held'; result: IngestResult }
  /** Delivered or not in the request, nothing kept (DELIVERY=sync): the last attempt's answer is the answer. */
  | { kind: 'answered'; job: JobRecord; outcome: RunOutcome['kind']; result: IngestResult };

/** What answering an upload needs from delivery: the spool's service, the distributed intake, or DirectDelivery. */
export interface UploadDelivery {
  accept(r: AcceptRequest): Promise<AcceptResult>;
  readonly settings: DeliverySettings;
  /** Refuses an upload before it is read when there is no room to keep it. */
  checkCapacity(declaredBytes: number | undefined): void;
}

/** Emitted when a job may have become due: the background worker listens (worker.ts). */
export const JOB_DUE = 'job-due';

export class DeliveryService extends EventEmitter<{ [JOB_DUE]: [] }> {
  /** The console's waveform pictures; set by setup.ts. */
  waveforms: JobWaveforms | undefined;
  /** Disk reserved in the spool by jobs being prepared (pipeline/disk.ts), on top of what the spool holds. */
  readonly ledger: DiskLedger;
  /** Every state change of the spool's jobs goes through it. */
  readonly life: JobLife;
  /** Asks Imagicle before a part whose last attempt's outcome is unknown is sent again (RECONCILE=auto). */
  reconcile: Reconciler | undefined;

  constructor(
    readonly spool: Spool,
    private readonly deliver: Deliver,
    readonly settings: DeliverySettings,
    private readonly logger: Logger,
    tools: { sinks?: readonly JobEventSink[] | undefined; metrics?: GatewayMetrics | undefined } = {},
  ) {
    super();
    this.life = new JobLife(
      { workerPolicy: settings.workerPolicy, maxAgeMs: settings.maxAgeMs },
      { ...tools, log: logger },
    );
    this.ledger = new DiskLedger(spool.jobsDir, {
      label: 'the spool',
      minFreeBytes: settings.minFreeDiskBytes ?? 0,
      room: () => settings.maxBytes - spool.usedBytes(),
      ceiling: () => settings.maxBytes,
    });
  }

  /** Spool bytes held and reserved. */
  private committedBytes(): number {
    return this.spool.usedBytes() + this.ledger.reserved();
  }

  /** Tells whoever delivers in the background that a job may be due now. */
  wake(): void {
    this.emit(JOB_DUE);
  }

  /** Refuses an upload before it is read when the spool is full (503 + Retry-After in Imagicle's shape). */
  checkCapacity(declaredBytes: number | undefined): void {
    const used = this.committedBytes();
    if (
      used >= this.settings.maxBytes ||
      (declaredBytes !== undefined && used + declaredBytes > this.settings.maxBytes)
    ) {
      throw spoolFull(used, this.settings.maxBytes);
    }
  }

  async accept(r: AcceptRequest): Promise<AcceptResult> {
    const { spool, settings } = this;
    const hashOf = async (input: AudioInput): Promise<string> => input.sha256 ?? (await sha256File(input.path));
    const hashes = [await hashOf(r.audio), ...(r.remoteAudio ? [await hashOf(r.remoteAudio)] : [])];
    const key = settings.dedupWindowMs > 0 ? dedupKey(r.owner, r.metadata, hashes) : undefined;
    const earlier = key ? spool.findDuplicate(key, settings.dedupWindowMs) : undefined;
    if (earlier) return this.duplicateOf(earlier, r.signal);

    // A referenced recording takes no room in the spool (its parts will, reserved when they are rendered).
    const heldBytes = async (a: DoorAudio | undefined): Promise<number> =>
      !a || a.source ? 0 : (await stat(a.path)).size;
    const bytes = (await heldBytes(r.audio)) + (await heldBytes(r.remoteAudio));
    if (this.committedBytes() + bytes > settings.maxBytes) throw spoolFull(this.committedBytes(), settings.maxBytes);

    const now = Date.now();
    const job = await spool.create(
      {
        mode: r.mode,
        door: r.door ?? 'http',
        callbackUrl: r.callbackUrl,
        requestId: r.requestId,
        owner: r.owner,
        async: r.preferAsync,
        expiresAt: new Date(now + settings.maxAgeMs).toISOString(),
        metadata: r.metadata,
        stereoOptions: r.stereoOptions,
        callerAuthorization: settings.keepCallerAuthorization ? r.callerAuthorization : undefined,
        dedupKey: key,
        audioSha256: hashes[0],
        contentType: undefined,
        decision: undefined,
      },
      {
        attachment: { ...r.audio, sha256: hashes[0] },
        remoteAttachment: r.remoteAudio ? { ...r.remoteAudio, sha256: hashes[1] } : undefined,
      },
      new Date(now),
      // Prefer: respond-async is answered 202 at once: fsynced now. Otherwise only if the job outlives the request.
      r.preferAsync,
    );
    // Two identical uploads at once: the earlier job wins, the later one is dropped as its duplicate.
    const winner = key ? spool.findDuplicate(key, settings.dedupWindowMs) : undefined;
    if (winner && winner.id !== job.id) {
      await spool.remove(job.id);
      spool.release(job.id);
      return this.duplicateOf(winner, r.signal);
    }
    r.onJob?.(job.id);
    const log = r.log.child({ jobId: job.id });
    log.info({ async: r.preferAsync }, 'job spooled');
    if (r.preferAsync) {
      spool.release(job.id);
      this.wake();
      return { kind: 'accepted', job, async: true };
    }

    // create() left the job claimed: the worker stays off it until the request has decided its fate.
    try {
      let run: RunResult;
      try {
        run = await this.runJob(job, { signal: r.signal, policy: settings.policy, prepare: r.prepare, log });
      } catch (error) {
        const gw = toGatewayError(error);
        if (gw.code === 'ABORTED' || r.signal.aborted) {
          // The caller left; what it sent is spooled and the worker finishes it.
          job.nextAttemptAt = new Date().toISOString();
          await spool.save(job);
        } else {
          // The gateway's own refusal (bad audio, too large, ...): nothing was accepted.
          await spool.remove(job.id);
        }
        throw error;
      }
      const result = ingestResultOf(job, run);
      switch (run.outcome.kind) {
        case 'delivered':
          return { kind: 'done', job, outcome: 'delivered', result };
        case 'permanent':
          // The caller gets Imagicle's answer; the job stays listed as failed (retry, or retention removes it).
          await this.life.fail(spool, job);
          return { kind: 'done', job, outcome: 'permanent', result };
        case 'held':
          await this.life.fail(spool, job, undefined, true);
          return { kind: 'done', job, outcome: 'held', result };
        case 'retry-later':
          await this.life.scheduleRetry(spool, job, run.outcome.retryAfter);
          return { kind: 'accepted', job, async: false };
        case 'prepared':
          // Not asked of an in-request run; kept for the worker if it ever were.
          return { kind: 'accepted', job, async: false };
      }
    } finally {
      spool.release(job.id);
      this.wake();
    }
  }

  /**
   * A duplicate is answered with its first job's outcome; an unfinished one is answered 202, so its inputs must
   * be durable first. Only the job's holder writes it: a job whose inputs are not fsynced yet is held by the
   * request that spooled it, which fsyncs them before it answers 202 or lets go; the duplicate waits for that.
   */
  private async duplicateOf(first: JobRecord, signal: AbortSignal): Promise<AcceptResult> {
    const { spool } = this;
    if (first.state === 'delivered' || first.inputsSynced !== false) return { kind: 'duplicate', first };
    const deadline = Date.now() + DUPLICATE_WAIT_MS;
    while (!spool.claim(first.id)) {
      if (!spool.get(first.id)) throw busy('The earlier upload of this recording is being removed; retry later', 1);
      if (Date.now() > deadline || signal.aborted) {
        throw busy('The earlier upload of this recording is still being accepted; retry in a moment', 2);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    try {
      const current = spool.get(first.id) ?? first;
      if (current.state !== 'delivered' && current.inputsSynced === false) await persistFiles(spool, current);
      return { kind: 'duplicate', first: current };
    } finally {
      spool.release(first.id);
    }
  }

  /** prepare → fit → deliver each part, over the spool (run-job.ts). */
  runJob(job: JobRecord, ctx: Omit<RunContext, 'life'>): Promise<RunResult> {
    const waveforms = this.waveforms;
    const afterDelivered = waveforms
      ? (j: JobRecord, part: SpooledPart, signal: AbortSignal | undefined) => waveforms.keep(j, part, signal)
      : undefined;
    const { life, reconcile } = this;
    return runJob(this.spool, this.deliver, job, {
      afterDelivered,
      reservations: () => this.ledger.scope(),
      reconcile,
      ...ctx,
      life,
    });
  }
}

/** How long a duplicate waits for the request that is accepting the first upload to let go of it. */
const DUPLICATE_WAIT_MS = 10_000;

function spoolFull(used: number, max: number): GatewayError {
  return busy(`The gateway's delivery spool is full (${used} of ${max} bytes); retry later`, 60);
}

function toUpstream(answer: StoredAnswer): UpstreamResponse {
  return { ...answer, retryAfter: undefined, elapsedMs: 0 };
}

/** The request's view of what happened, in the shape the existing answers (drop-in, report) take. */
export function ingestResultOf(job: JobRecord, run: RunResult): IngestResult {
  const fitted = run.fitted;
  if (!fitted || !run.prepared) throw new Error('a job run in the request has its prepared audio');
  const deliveries: PartDelivery[] = fitted.parts.map((part, i) => {
    const spooled = job.parts[i];
    const live = run.live.get(part.index);
    return {
      part,
      metadata: spooled?.metadata ?? metadataForPart(job.metadata, part),
      upstream: live?.response ?? (spooled?.upstream ? toUpstream(spooled.upstream) : undefined),
      error: live?.response ? undefined : live?.error,
      delivered: spooled?.state === 'delivered',
      attempted: (spooled?.attempts ?? 0) > 0,
    };
  });
  const complete = deliveries.every((d) => d.delivered);
  return { prepared: run.prepared, fitted, deliveries, complete, deliverMs: run.deliverMs ?? 0 };
}
