/**
 * The one delivery procedure, whatever holds the job (a JobStore: the file
 * spool, a BullMQ job in the distributed mode, or memory for DELIVERY=sync
 * and the file doors): received → (prepare, fit) → ready → each part in
 * order, each attempt journaled before it starts (part "delivering", after
 * the store confirmed its lease) and after it ends. A split recording
 * resumes at the first undelivered part.
 *
 * The fsync plan is the store's (JobStore.fsyncPlan; docs/delivery.md,
 * "What is fsynced, and when"). The spool's, `deferred`: rendered parts are
 * not fsynced while the caller waits; they are fsynced only when the job
 * outlives the run undelivered (persistFiles), before anyone is told 202. A
 * run that finds parts never fsynced (a crash came first) renders them again
 * from the inputs, which are kept until then.
 */
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { UploadInput, UpstreamResponse } from '../imagicle/client.js';
import { metadataForPart, prepareForDelivery, type Deliver, type IngestDeps } from '../pipeline/ingest.js';
import type { FittedAudio } from '../pipeline/fit.js';
import type { PreparedAudio } from '../pipeline/prepared.js';
import { referencedFiles } from './blob-store.js';
import { openJobInputs, partsInside, type HeldInputs } from './job-inputs.js';
import { fsyncFile } from './durable.js';
import { LeaseLostError, type JobStore } from './job-store.js';
import type { Verdict } from './retry.js';
import { deliverWithRetry } from './retrying-deliver.js';
import { jobReportOf } from './job-report.js';
import type { Logger } from '../logger.js';
import type { DiskScope } from '../pipeline/disk.js';
import type { RetryPolicy } from './retry.js';
import type { JobRecord, SpooledPart } from './job.js';
import {
  beginAttempt,
  clearUncertainty,
  endAttempt,
  markDeliveredElsewhere,
  markUncertainElsewhere,
  markRendered,
  newPart,
  reconcilePart,
  recoverInterrupted,
  type JobLife,
  type RunOutcome,
} from './job-life.js';
import type { Reconciler } from './reconcile-port.js';

/** What the preparation needs: the pipeline's settings and tools, without the delivery function. */
export type PrepareSettings = Omit<IngestDeps, 'deliver'>;

export interface RunContext {
  /** The job-life module: every state change goes through it. */
  life: JobLife;
  signal: AbortSignal | undefined;
  policy: RetryPolicy;
  prepare: PrepareSettings;
  log: Logger;
  /**
   * Files the caller holds open and reads where they are (a file door's descriptors: read-only), instead of the
   * job's own folder.
   */
  inputs?: HeldInputs | undefined;
  /** Called once the audio is rendered, before the job is saved as ready (the distributed mode keeps a summary). */
  onRendered?: ((fitted: FittedAudio) => void) | undefined;
  /** Called after a part is delivered and journaled, before its audio is pruned (the console's waveforms). */
  afterDelivered?: ((job: JobRecord, part: SpooledPart, signal: AbortSignal | undefined) => Promise<void>) | undefined;
  /** Stop once the parts are rendered (and durable): nothing is sent in this run. */
  prepareOnly?: boolean | undefined;
  /** Reserves the disk the preparation writes (the spool's ledger, pipeline/disk.ts); none: nothing reserved. */
  reservations?: (() => DiskScope) | undefined;
  /** Another record of the attempts (the file doors' state); none: the store's record only. */
  journal?: AttemptJournal | undefined;
  /** Asks Imagicle whether it already holds a part whose last attempt's outcome is unknown; none: never asked. */
  reconcile?: Reconciler | undefined;
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
  /** Time spent delivering in this run. */
  deliverMs?: number | undefined;
}

interface AttemptJournal {
  /** A part that journal holds as delivered by an earlier run: skipped. */
  isDelivered(part: SpooledPart): boolean;
  /** Before an attempt starts (after the store's own record). */
  beforeAttempt(part: SpooledPart): void | Promise<void>;
  afterAttempt(part: SpooledPart, verdict: Verdict, result: LiveResult): void | Promise<void>;
  /** When that journal saw an attempt at the part cut short or unanswered (ISO 8601); undefined: never. */
  uncertainSince?(part: SpooledPart): string | undefined;
  /** Imagicle was found to hold the part (reconciliation): delivered without an attempt. */
  found?(part: SpooledPart): void | Promise<void>;
}

export async function runJob(store: JobStore, deliver: Deliver, job: JobRecord, ctx: RunContext): Promise<RunResult> {
  const dir = store.jobDir(job.id);
  const plan = store.fsyncPlan ?? 'eager';
  const live = new Map<number, LiveResult>();
  let prepared: PreparedAudio | undefined;
  let fitted: FittedAudio | undefined;
  try {
    // Parts rendered by a run that ended without fsyncing them: a crash may have torn them (see the header).
    const rerender = plan === 'deferred' && job.parts.length > 0 && job.partsSynced === false;
    if (job.parts.length === 0 || rerender) {
      const before = job.parts;
      job.lastError = undefined;
      // Leftovers of an interrupted transcode go first.
      await store.prune(job);
      // What the preparation writes in the job's folder is reserved first, released once the parts are written
      // (then the store counts them) or the preparation failed.
      const reservations = ctx.reservations?.();
      const inputs = await openJobInputs(job, dir, ctx.signal, ctx.inputs);
      try {
        ({ prepared, fitted } = await prepareForDelivery(
          {
            metadata: job.metadata,
            audio: inputs.attachment,
            remoteAudio: inputs.remoteAttachment,
            stereoOptions: job.stereoOptions,
            workDir: dir,
            signal: ctx.signal,
          },
          reservations
            ? { ...ctx.prepare, bounds: { maxExpansion: Infinity, ...ctx.prepare.bounds, budget: reservations } }
            : ctx.prepare,
        ));
        fitted = await partsInside(fitted, dir);
        // A watched folder's file written to while it was read: what was rendered from it is not the recording.
        await inputs.checkUnchanged();
        const inputFiles = new Set([job.inputs.attachment.file, job.inputs.remoteAttachment?.file]);
        job.parts = fitted.parts.map((part) => {
          const file = path.relative(dir, part.path);
          if (file.startsWith('..') || path.isAbsolute(file)) {
            throw new Error(`a prepared part is outside its job folder: ${file}`);
          }
          const { path: _abs, ...rest } = part;
          const metadata = metadataForPart(job.metadata, part);
          return newPart({ ...rest, file, metadata });
        });
        if (rerender) keepDelivered(job.parts, before);
        if (plan === 'eager') {
          for (const part of job.parts) await fsyncFile(path.join(dir, part.file));
        } else if (plan === 'deferred') {
          // A WAV header repaired in place changed the input itself: fsynced now, it cannot be rendered again.
          const inPlace =
            fitted.prepared.plan.action === 'repair-header' && job.parts.some((p) => inputFiles.has(p.file));
          if (inPlace) {
            for (const part of job.parts) if (inputFiles.has(part.file)) await fsyncFile(path.join(dir, part.file));
            // Journaled at once: its recorded SHA-256 no longer matches, and must not be checked after a crash.
            job.inputsSynced = undefined;
          }
          job.partsSynced = false;
          if (inPlace) await store.save(job);
        }
        markRendered(job, fitted.prepared.contentType, fitted.prepared.plan.action, jobReportOf(fitted.prepared));
        ctx.onRendered?.(fitted);
        // Deferred fsync: parts not yet fsynced are rendered again after a crash anyway, so "ready" need not be
        // journaled here; the first attempt's record (or the run's end) is the next write.
        if (plan !== 'deferred') await store.save(job);
        await store.prune(job);
      } finally {
        reservations?.releaseAll();
        await inputs.close();
      }
    }

    if (ctx.prepareOnly && job.parts.some((p) => p.state !== 'delivered')) {
      if (plan === 'deferred') await persistFiles(store, job);
      else await store.save(job);
      return { outcome: { kind: 'prepared' }, prepared, fitted, live };
    }
    const deliverStarted = performance.now();
    const ended = (outcome: RunResult['outcome']): RunResult => ({
      outcome,
      prepared,
      fitted,
      live,
      deliverMs: performance.now() - deliverStarted,
    });
    // With reconciliation, an unknown outcome is a question for Imagicle before the next send, not a hold.
    const policy = ctx.reconcile ? { ...ctx.policy, retryAmbiguous: true } : ctx.policy;
    for (const part of job.parts) {
      if (part.state !== 'delivered' && ctx.journal?.isDelivered(part)) markDeliveredElsewhere(part);
      if (part.state === 'delivered') continue;
      const uncertainElsewhere = part.uncertainSince === undefined ? ctx.journal?.uncertainSince?.(part) : undefined;
      if (uncertainElsewhere !== undefined) markUncertainElsewhere(part, uncertainElsewhere);
      let attemptStarted = Date.now();
      const upload: UploadInput = {
        metadata: part.metadata,
        audioPath: path.join(dir, part.file),
        audioBytes: part.bytes,
        contentType: job.contentType ?? 'application/octet-stream',
        filename: part.filename,
        callerAuthorization: job.callerAuthorization,
        signal: ctx.signal,
      };
      let outcome;
      // The same budget deliverWithRetry keeps: a question that cannot be asked before it ends is left for later.
      const notAfter = Date.now() + policy.maxTotalMs;
      try {
        outcome = await deliverWithRetry(deliver, upload, policy, {
          beforeAttempt: async () => {
            // An expired lease must never deliver: whoever took the job over may be sending it right now.
            await store.confirmLease(job);
            if (
              part.uncertainSince !== undefined &&
              (await settleUncertainty(store, job, part, ctx, notAfter)) === 'found'
            ) {
              await ctx.journal?.found?.(part);
              return { skip: true };
            }
            if (part.attempts > 0) ctx.prepare.metrics?.retry();
            attemptStarted = Date.now();
            beginAttempt(job, part);
            await store.save(job);
            await ctx.journal?.beforeAttempt(part);
            return { skip: false };
          },
          afterAttempt: async (_attempt, verdict, result) => {
            live.set(part.index, result);
            endAttempt(job, part, verdict, result, attemptStarted);
            await store.save(job);
            await ctx.journal?.afterAttempt(part, verdict, result);
            if (verdict === 'success') await ctx.afterDelivered?.(job, part, ctx.signal);
            if (verdict === 'success') await store.prune(job);
          },
        });
      } catch (error) {
        if (!(error instanceof UncertainStop)) throw error;
        // Imagicle may hold the part and cannot be asked now: nothing is sent; held, or asked again later.
        if (plan === 'deferred') await persistFiles(store, job);
        ctx.log.warn(
          { jobId: job.id, part: part.index, reason: error.message },
          'a part Imagicle may hold is not sent again',
        );
        return ended(
          error.outcome === 'held' ? { kind: 'held' } : { kind: 'retry-later', retryAfter: error.retryAfter },
        );
      }
      if (outcome.verdict === 'success') continue;
      ctx.log.info(
        {
          jobId: job.id,
          part: part.index,
          verdict: outcome.verdict,
          attempts: outcome.attempts,
          status: outcome.response?.status,
          code: outcome.error?.code,
        },
        'delivery attempt failed',
      );
      // The job outlives this run undelivered (kept for later, or failed and kept): its files become durable first.
      if (plan === 'deferred') await persistFiles(store, job);
      if (outcome.verdict === 'permanent') return ended({ kind: 'permanent' });
      if (outcome.verdict === 'ambiguous' && !policy.retryAmbiguous) return ended({ kind: 'held' });
      return ended({ kind: 'retry-later', retryAfter: outcome.retryAfter });
    }
    ctx.prepare.metrics?.delivered((performance.now() - deliverStarted) / 1000);
    await ctx.life.deliver(store, job);
    await store.prune(job);
    return ended({ kind: 'delivered' });
  } catch (error) {
    // An attempt cut short (abort, shutdown): if its whole body went out, Imagicle may have it.
    recoverInterrupted(job, error instanceof GatewayError && error.detail.bodyComplete === true);
    // Without the lease the record is no longer ours to write. (The spool ignores a save of a removed job.)
    if (!(error instanceof LeaseLostError)) await store.save(job).catch(() => undefined);
    throw error;
  }
}

/**
 * Makes every file the job still needs durable (fsync), records it, then drops the inputs the fsynced parts
 * replace. Called before the job may be answered 202 or left for later: after a run that did not deliver it,
 * and for an unfinished job a duplicate upload is answered with. Files removed meanwhile (a part delivered by
 * the run still going) are skipped.
 */
export async function persistFiles(store: JobStore, job: JobRecord): Promise<void> {
  if (job.inputsSynced !== false && job.partsSynced !== false) return;
  const dir = store.jobDir(job.id);
  // Once there are parts, they are what is kept: the inputs go (unless a part is an input, passed through).
  const undelivered = job.parts.filter((p) => p.state !== 'delivered').map((p) => p.file);
  const files = job.parts.length === 0 ? referencedFiles(job) : undelivered;
  for (const file of files) {
    await fsyncFile(path.join(dir, file)).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    });
  }
  job.inputsSynced = undefined;
  if (job.parts.length > 0) job.partsSynced = undefined;
  await store.save(job);
  await store.prune(job);
}

/** A re-rendered recording keeps what its earlier parts' attempts did (a delivered part is not sent again). */
function keepDelivered(parts: SpooledPart[], before: SpooledPart[]): void {
  for (const old of before) {
    const part = parts.find((p) => p.index === old.index);
    if (part && part.count === old.count) {
      // The uncertainty too: a part whose attempt a crash cut short is asked about before it is sent again.
      const { state, attempts, upstream, deliveredAt, uncertainSince, uncertainAnswered, uncertainInterrupted } = old;
      Object.assign(part, {
        state,
        attempts,
        upstream,
        deliveredAt,
        uncertainSince,
        uncertainAnswered,
        uncertainInterrupted,
      });
    } else if (old.state === 'delivered') {
      throw new Error(
        `part ${old.index} of ${old.count} was delivered, but the recording now renders to ${parts.length} parts`,
      );
    }
  }
}

/** Thrown before an attempt at a part Imagicle may already hold and that must not be sent now. */
class UncertainStop extends Error {
  constructor(
    readonly outcome: 'held' | 'retry-later',
    reason: string,
    /** Retry-After (seconds) for the next run: when the question can be asked. */
    readonly retryAfter?: string,
  ) {
    super(reason);
  }
}

/**
 * Before a part whose last attempt's outcome is unknown is sent again: Imagicle is asked (RECONCILE=auto). Found:
 * the part is delivered as that recording. Absent: it is sent, no duplicate. Cannot be asked: a read that failed
 * this time keeps the question for later; refused reads (or no reconciliation) fall back to the rule without it:
 * a part interrupted by a crash, or with RETRY_AMBIGUOUS=true, is sent again and counted as a possible duplicate;
 * otherwise the job is held for an operator.
 */
async function settleUncertainty(
  store: JobStore,
  job: JobRecord,
  part: SpooledPart,
  ctx: RunContext,
  notAfter: number,
): Promise<'found' | 'send'> {
  const answer = ctx.reconcile
    ? await ctx.reconcile.check({
        metadata: part.metadata,
        callerAuthorization: job.callerAuthorization,
        // An attempt Imagicle answered (500) is over: nothing is still being imported, ask at once.
        attemptStartedAt: part.uncertainAnswered ? new Date(0).toISOString() : part.uncertainSince,
        notAfter,
        signal: ctx.signal,
      })
    : undefined;
  if (answer?.kind === 'later') {
    const seconds = Math.max(1, Math.ceil((answer.at - Date.now()) / 1000));
    throw new UncertainStop(
      'retry-later',
      `Imagicle may go on importing the last attempt for ${seconds} s more: asked then, before any re-send`,
      String(seconds),
    );
  }
  if (answer?.kind === 'found') {
    reconcilePart(job, part, answer.id, answer.others);
    await store.save(job);
    ctx.log.info(
      { jobId: job.id, part: part.index, id: answer.id, others: answer.others },
      'found in Imagicle: not sent again',
    );
    return 'found';
  }
  if (answer?.kind === 'unavailable' && answer.transient) throw new UncertainStop('retry-later', answer.reason);
  if (answer === undefined || answer.kind === 'unavailable') {
    if (!part.uncertainInterrupted && !ctx.policy.retryAmbiguous) {
      throw new UncertainStop('held', answer?.reason ?? 'the outcome of the last attempt is unknown');
    }
    job.possibleDuplicates += 1;
  }
  clearUncertainty(part);
  return 'send';
}
