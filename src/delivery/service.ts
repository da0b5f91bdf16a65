/**
 * Spooled delivery (DELIVERY=wait): the use case around the spool.
 *
 * accept(): dedup check → spool the raw upload (state received, durable) →
 * either 202 at once (Prefer: respond-async) or prepare + deliver in the
 * request with the in-request retry policy. What Imagicle did not take
 * stays in the spool for the worker (worker.ts).
 *
 * runJob(): the one procedure both the request and the worker run:
 * received → (prepare, fit) → ready → each part in order, each attempt
 * journaled before it starts (part "delivering") and after it ends.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { busy, GatewayError, toGatewayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { UploadInput, UpstreamResponse } from '../imagicle/client.js';
import type { RecordingMetadata } from '../imagicle/schema.js';
import { metadataForPart, prepareForDelivery, type Deliver, type IngestDeps, type IngestResult, type PartDelivery } from '../pipeline/ingest.js';
import type { FittedAudio } from '../pipeline/fit.js';
import type { AudioInput, PreparedAudio } from '../pipeline/prepare.js';
import type { StereoRequestOptions } from '../pipeline/stereo.js';
import { fsyncFile } from './durable.js';
import { DiskLedger } from '../pipeline/disk.js';
import { dedupKey, sha256File, type DedupAnswer } from './dedup.js';
import { delayFor, type RetryPolicy, type Verdict } from './retry.js';
import { deliverWithRetry } from './retrying-deliver.js';
import type { JobError, JobMode, JobRecord, Spool, StoredAnswer } from './spool.js';

export type PrepareSettings = Omit<IngestDeps, 'deliver'>;

export interface DeliverySettings {
  /** In-request retries (RETRY_*). */
  policy: RetryPolicy;
  /** Background retries: the same policy, with SPOOL_RETRY_MAX_DELAY_MS as the cap on one delay. */
  workerPolicy: RetryPolicy;
  maxAgeMs: number;
  maxBytes: number;
  dedupWindowMs: number;
  dedupAnswer: DedupAnswer;
  /** The gateway has no Imagicle credentials: the caller's Authorization must be kept to deliver later. */
  keepCallerAuthorization: boolean;
  /** MIN_FREE_DISK_BYTES: free space kept on the spool's file system. */
  minFreeDiskBytes?: number;
}

export interface AcceptRequest {
  mode: JobMode;
  requestId: string;
  log: Logger;
  signal: AbortSignal;
  preferAsync: boolean;
  metadata: RecordingMetadata;
  audio: AudioInput;
  remoteAudio: AudioInput | undefined;
  stereoOptions: StereoRequestOptions | undefined;
  callerAuthorization: string | undefined;
  /** Who sends it (http/owner.ts): recorded on the job, part of the duplicate key. */
  owner: string;
  prepare: PrepareSettings;
}

export type AcceptResult =
  | { kind: 'duplicate'; first: JobRecord }
  /** Spooled, not (yet) delivered: 202. */
  | { kind: 'accepted'; job: JobRecord; async: boolean }
  /** Handled in the request: delivered, refused for good (permanent) or held (ambiguous, not retried). */
  | { kind: 'done'; job: JobRecord; outcome: 'delivered' | 'permanent' | 'held'; result: IngestResult };

export type RunOutcome =
  | { kind: 'delivered' }
  | { kind: 'permanent' }
  | { kind: 'held' }
  | { kind: 'retry-later'; retryAfter: string | undefined };

export interface RunContext {
  signal: AbortSignal | undefined;
  policy: RetryPolicy;
  prepare: PrepareSettings;
  log: Logger;
}

interface LiveResult {
  response?: UpstreamResponse | undefined;
  error?: GatewayError | undefined;
}

export interface RunResult {
  outcome: RunOutcome;
  prepared: PreparedAudio | undefined;
  fitted: FittedAudio | undefined;
  live: Map<number, LiveResult>;
}

/** Wakes the background worker; set by the worker when it starts. */
export type Kick = () => void;

export class DeliveryService {
  kick: Kick = () => undefined;

  /** Disk reserved in the spool by jobs being prepared (pipeline/disk.ts), on top of what the spool holds. */
  readonly ledger: DiskLedger;

  constructor(
    readonly spool: Spool,
    private readonly deliver: Deliver,
    readonly settings: DeliverySettings,
    private readonly logger: Logger,
  ) {
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

  /** Refuses an upload before it is read when the spool is full (503 + Retry-After in Imagicle's shape). */
  checkCapacity(declaredBytes: number | undefined): void {
    const used = this.committedBytes();
    if (used >= this.settings.maxBytes || (declaredBytes !== undefined && used + declaredBytes > this.settings.maxBytes)) {
      throw spoolFull(used, this.settings.maxBytes);
    }
  }

  async accept(r: AcceptRequest): Promise<AcceptResult> {
    const { spool, settings } = this;
    const hashOf = async (input: AudioInput): Promise<string> => input.sha256 ?? (await sha256File(input.path));
    const hashes = [await hashOf(r.audio), ...(r.remoteAudio ? [await hashOf(r.remoteAudio)] : [])];
    const key = settings.dedupWindowMs > 0 ? dedupKey(r.owner, r.metadata.pbxCallId, hashes) : undefined;
    const earlier = key ? spool.findDuplicate(key, settings.dedupWindowMs) : undefined;
    if (earlier) return { kind: 'duplicate', first: earlier };

    const bytes = (await stat(r.audio.path)).size + (r.remoteAudio ? (await stat(r.remoteAudio.path)).size : 0);
    if (this.committedBytes() + bytes > settings.maxBytes) throw spoolFull(this.committedBytes(), settings.maxBytes);

    const now = Date.now();
    const job = await spool.create(
      {
        mode: r.mode,
        requestId: r.requestId,
        async: r.preferAsync,
        owner: r.owner,
        expiresAt: new Date(now + settings.maxAgeMs).toISOString(),
        metadata: r.metadata,
        stereoOptions: r.stereoOptions,
        callerAuthorization: settings.keepCallerAuthorization ? r.callerAuthorization : undefined,
        dedupKey: key,
        audioSha256: hashes[0],
        contentType: undefined,
        decision: undefined,
      },
      { attachment: r.audio, remoteAttachment: r.remoteAudio },
    );
    // Two identical uploads at once: the earlier job wins, the later one is dropped as its duplicate.
    const winner = key ? spool.findDuplicate(key, settings.dedupWindowMs) : undefined;
    if (winner && winner.id !== job.id) {
      await spool.remove(job.id);
      spool.release(job.id);
      return { kind: 'duplicate', first: winner };
    }
    r.log.info({ jobId: job.id, async: r.preferAsync }, 'job spooled');
    if (r.preferAsync) {
      spool.release(job.id);
      this.kick();
      return { kind: 'accepted', job, async: true };
    }

    // create() left the job claimed: the worker stays off it until the request has decided its fate.
    try {
      let run: RunResult;
      try {
        run = await this.runJob(job, { signal: r.signal, policy: settings.policy, prepare: r.prepare, log: r.log });
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
          // The caller gets Imagicle's answer and keeps its recording: nothing stays spooled.
          await spool.remove(job.id);
          return { kind: 'done', job, outcome: 'permanent', result };
        case 'held':
          await this.fail(job);
          return { kind: 'done', job, outcome: 'held', result };
        case 'retry-later':
          await this.schedule(job, run.outcome.retryAfter);
          return { kind: 'accepted', job, async: false };
      }
    } finally {
      spool.release(job.id);
      this.kick();
    }
  }

  /** Marks a job failed; its files stay until DELETE (or a retry). */
  async fail(job: JobRecord, error?: JobError): Promise<void> {
    if (error) job.lastError = error;
    job.state = 'failed';
    job.failedAt = new Date().toISOString();
    job.nextAttemptAt = undefined;
    await this.spool.save(job);
  }

  /** Schedules the next background attempt with the worker's backoff. */
  async schedule(job: JobRecord, retryAfter: string | undefined): Promise<void> {
    const delay = delayFor(this.settings.workerPolicy, Math.max(1, job.attempts), retryAfter);
    job.state = job.parts.length === 0 ? 'received' : 'ready';
    job.nextAttemptAt = new Date(Date.now() + delay).toISOString();
    await this.spool.save(job);
  }

  async runJob(job: JobRecord, ctx: RunContext): Promise<RunResult> {
    const { spool } = this;
    const dir = spool.jobDir(job.id);
    const live = new Map<number, LiveResult>();
    let prepared: PreparedAudio | undefined;
    let fitted: FittedAudio | undefined;
    try {
      if (job.parts.length === 0) {
        job.lastError = undefined;
        // Leftovers of an interrupted transcode go first.
        await spool.prune(job);
        const input = (i: { file: string; originalName: string | undefined; extension: string }): AudioInput => ({
          path: path.join(dir, i.file),
          originalName: i.originalName,
          extension: i.extension,
        });
        // What the preparation writes in the job's folder is reserved in the spool first, released once the
        // parts are written (then the spool counts them) or the preparation failed.
        const reservations = this.ledger.scope();
        try {
          ({ prepared, fitted } = await prepareForDelivery(
            {
              metadata: job.metadata,
              audio: input(job.inputs.attachment),
              remoteAudio: job.inputs.remoteAttachment ? input(job.inputs.remoteAttachment) : undefined,
              stereoOptions: job.stereoOptions,
              workDir: dir,
              signal: ctx.signal,
            },
            { ...ctx.prepare, bounds: { maxExpansion: Infinity, ...ctx.prepare.bounds, budget: reservations } },
          ));
          for (const part of fitted.parts) await fsyncFile(part.path);
          job.parts = fitted.parts.map((part) => {
            const file = path.relative(dir, part.path);
            if (file.startsWith('..') || path.isAbsolute(file)) {
              throw new Error(`a prepared part is outside its job folder: ${file}`);
            }
            const { path: _abs, ...rest } = part;
            const metadata = metadataForPart(job.metadata, part);
            const fresh = { state: 'pending', attempts: 0, upstream: undefined, deliveredAt: undefined } as const;
            return { ...rest, file, metadata, ...fresh };
          });
          job.contentType = fitted.prepared.contentType;
          job.decision = fitted.prepared.plan.action;
          job.prepareFailures = undefined;
          job.state = 'ready';
          await spool.save(job);
          await spool.prune(job);
        } finally {
          reservations.releaseAll();
        }
      }

      for (const part of job.parts) {
        if (part.state === 'delivered') continue;
        const upload: UploadInput = {
          metadata: part.metadata,
          audioPath: path.join(dir, part.file),
          audioBytes: part.bytes,
          contentType: job.contentType ?? 'application/octet-stream',
          filename: part.filename,
          callerAuthorization: job.callerAuthorization,
          signal: ctx.signal,
        };
        const outcome = await deliverWithRetry(this.deliver, upload, ctx.policy, {
          beforeAttempt: async () => {
            part.state = 'delivering';
            part.attempts += 1;
            job.attempts += 1;
            job.state = 'delivering';
            await spool.save(job);
          },
          afterAttempt: async (_attempt, verdict, result) => {
            live.set(part.index, result);
            if (result.response) part.upstream = storedAnswer(result.response);
            if (verdict === 'success') {
              part.state = 'delivered';
              part.deliveredAt = new Date().toISOString();
            } else {
              part.state = 'pending';
              job.lastError = jobError(part.index, verdict, result);
            }
            job.state = 'ready';
            await spool.save(job);
            if (verdict === 'success') await spool.prune(job);
          },
        });
        job.possibleDuplicates += outcome.ambiguousRetries;
        if (outcome.verdict === 'success') continue;
        ctx.log.info({ jobId: job.id, part: part.index, verdict: outcome.verdict, attempts: outcome.attempts, status: outcome.response?.status, code: outcome.error?.code }, 'delivery attempt failed');
        if (outcome.verdict === 'permanent') return { outcome: { kind: 'permanent' }, prepared, fitted, live };
        if (outcome.verdict === 'ambiguous' && !ctx.policy.retryAmbiguous) return { outcome: { kind: 'held' }, prepared, fitted, live };
        // The next attempt, whoever makes it, may duplicate what this one did.
        if (outcome.verdict === 'ambiguous') job.possibleDuplicates += 1;
        return { outcome: { kind: 'retry-later', retryAfter: outcome.retryAfter }, prepared, fitted, live };
      }
      job.state = 'delivered';
      job.deliveredAt = new Date().toISOString();
      job.nextAttemptAt = undefined;
      job.lastError = undefined;
      job.callerAuthorization = undefined;
      await spool.save(job);
      await spool.prune(job);
      return { outcome: { kind: 'delivered' }, prepared, fitted, live };
    } catch (error) {
      // An attempt cut short (abort, shutdown): if its whole body went out, Imagicle may have it.
      for (const part of job.parts) {
        if (part.state !== 'delivering') continue;
        part.state = 'pending';
        if (error instanceof GatewayError && error.detail.bodyComplete === true) job.possibleDuplicates += 1;
      }
      if (job.state === 'delivering') job.state = 'ready';
      if (spool.get(job.id)) await spool.save(job).catch(() => undefined);
      throw error;
    }
  }
}

export function spoolFull(used: number, max: number): GatewayError {
  return busy(`The gateway's delivery spool is full (${used} of ${max} bytes); retry later`, 60);
}

function storedAnswer(response: UpstreamResponse): StoredAnswer {
  return { status: response.status, contentType: response.contentType, body: response.body, json: response.json };
}

function jobError(part: number, verdict: Verdict, result: LiveResult): JobError {
  const at = new Date().toISOString();
  if (result.response) {
    return {
      at,
      part,
      status: result.response.status,
      code: undefined,
      message: `Imagicle answered ${result.response.status}`,
      body: result.response.json ?? result.response.body,
      ambiguous: verdict === 'ambiguous',
    };
  }
  const error = result.error;
  return {
    at,
    part,
    status: error?.status,
    code: typeof error?.detail.code === 'string' ? error.detail.code : error?.code,
    message: error?.message ?? 'no answer',
    body: undefined,
    ambiguous: verdict === 'ambiguous',
  };
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
  return { prepared: run.prepared, fitted, deliveries, complete: deliveries.every((d) => d.delivered), deliverMs: 0 };
}
