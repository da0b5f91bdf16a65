/**
 * The one delivery procedure, whatever holds the job (a JobStore: the file
 * spool, or a BullMQ job in the distributed mode): received → (prepare, fit)
 * → ready → each part in order, each attempt journaled before it starts
 * (part "delivering", after the store confirmed its lease) and after it ends.
 * A split recording resumes at the first undelivered part.
 */
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { UploadInput, UpstreamResponse } from '../imagicle/client.js';
import { metadataForPart, prepareForDelivery, type Deliver } from '../pipeline/ingest.js';
import type { FittedAudio } from '../pipeline/fit.js';
import type { AudioInput, PreparedAudio } from '../pipeline/prepare.js';
import { fsyncFile } from './durable.js';
import { LeaseLostError, type JobStore } from './job-store.js';
import type { Verdict } from './retry.js';
import { deliverWithRetry } from './retrying-deliver.js';
import { attemptRecord, jobReportOf, pushAttempt } from './job-report.js';
import type { LiveResult, RunContext, RunResult } from './service.js';
import type { JobError, JobRecord, StoredAnswer } from './spool.js';

export async function runJob(store: JobStore, deliver: Deliver, job: JobRecord, ctx: RunContext): Promise<RunResult> {
  const dir = store.jobDir(job.id);
  const live = new Map<number, LiveResult>();
  let prepared: PreparedAudio | undefined;
  let fitted: FittedAudio | undefined;
  try {
    if (job.parts.length === 0) {
      job.lastError = undefined;
      // Leftovers of an interrupted transcode go first.
      await store.prune(job);
      const input = (i: { file: string; originalName: string | undefined; extension: string }): AudioInput => ({
        path: path.join(dir, i.file),
        originalName: i.originalName,
        extension: i.extension,
      });
      // What the preparation writes in the job's folder is reserved first, released once the parts are written
      // (then the store counts them) or the preparation failed.
      const reservations = ctx.reservations?.();
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
          reservations
            ? { ...ctx.prepare, bounds: { maxExpansion: Infinity, ...ctx.prepare.bounds, budget: reservations } }
            : ctx.prepare,
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
        job.report = jobReportOf(fitted.prepared);
        job.prepareFailures = undefined;
        job.state = 'ready';
        ctx.onRendered?.(fitted);
        await store.save(job);
        await store.prune(job);
      } finally {
        reservations?.releaseAll();
      }
    }

    const deliverStarted = performance.now();
    for (const part of job.parts) {
      if (part.state === 'delivered') continue;
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
      const outcome = await deliverWithRetry(deliver, upload, ctx.policy, {
        beforeAttempt: async () => {
          // An expired lease must never deliver: whoever took the job over may be sending it right now.
          await store.confirmLease(job);
          if (part.attempts > 0) ctx.prepare.metrics?.retry();
          attemptStarted = Date.now();
          part.state = 'delivering';
          part.attempts += 1;
          job.attempts += 1;
          job.state = 'delivering';
          await store.save(job);
        },
        afterAttempt: async (_attempt, verdict, result) => {
          live.set(part.index, result);
          job.history = pushAttempt(job.history, attemptRecord(part.index, part.attempts, verdict, result, attemptStarted));
          if (result.response) part.upstream = storedAnswer(result.response);
          if (verdict === 'success') {
            part.state = 'delivered';
            part.deliveredAt = new Date().toISOString();
          } else {
            part.state = 'pending';
            job.lastError = jobError(part.index, verdict, result);
          }
          job.state = 'ready';
          await store.save(job);
          if (verdict === 'success') await ctx.afterDelivered?.(job, part, ctx.signal);
          if (verdict === 'success') await store.prune(job);
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
    ctx.prepare.metrics?.delivered((performance.now() - deliverStarted) / 1000);
    job.state = 'delivered';
    job.deliveredAt = new Date().toISOString();
    job.nextAttemptAt = undefined;
    job.lastError = undefined;
    job.callerAuthorization = undefined;
    await store.save(job);
    await store.prune(job);
    return { outcome: { kind: 'delivered' }, prepared, fitted, live };
  } catch (error) {
    // An attempt cut short (abort, shutdown): if its whole body went out, Imagicle may have it.
    for (const part of job.parts) {
      if (part.state !== 'delivering') continue;
      part.state = 'pending';
      if (error instanceof GatewayError && error.detail.bodyComplete === true) job.possibleDuplicates += 1;
    }
    if (job.state === 'delivering') job.state = 'ready';
    // Without the lease the record is no longer ours to write. (The spool ignores a save of a removed job.)
    if (!(error instanceof LeaseLostError)) await store.save(job).catch(() => undefined);
    throw error;
  }
}

export function storedAnswer(response: UpstreamResponse): StoredAnswer {
  return { status: response.status, contentType: response.contentType, body: response.body, json: response.json };
}

export function jobError(part: number, verdict: Verdict, result: LiveResult): JobError {
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
