/**
 * A job's life, decided in one place for every door (HTTP, import, watched
 * folder) and every store (the file spool, memory, the BullMQ queue):
 *
 *   received ─► ready ─► delivering ─► delivered
 *      │  ▲       │ ▲        │
 *      │  └─retry─┘ └─retry──┤
 *      └──────────────┴──────┴─► failed (refused, expired, held) ─► (operator retry) received/ready
 *
 * The functions here change a JobRecord; a store only persists the result
 * (JobStore.save) under the job's claim. Events a source or an operator
 * cares about (job-events.ts) are recorded on the job in the same write as
 * the state change, then handed to the sinks once that write is done.
 */
import { randomUUID } from 'node:crypto';
import { GatewayError, toGatewayError } from '../errors.js';
import type { UpstreamResponse } from '../imagicle/client.js';
import type { Logger } from '../logger.js';
import type { GatewayMetrics } from '../metrics.js';
import { MAX_JOB_EVENTS, type JobEvent, type JobEventType } from './job-events.js';
import type { JobEventSink } from './job-event-sink.js';
import { attemptRecord, pushAttempt, type JobReport } from './job-report.js';
import type { JobInit, JobError, JobRecord, SpooledPart, StoredAnswer } from './job.js';
import type { JobStore } from './job-store.js';
import { delayFor, type RetryPolicy, type Verdict } from './retry.js';

/** Failed preparations (not a full disk, not busy) after which a job is failed rather than retried. */
export const MAX_PREPARE_FAILURES = 3;

/** What one run of the delivery procedure (run-job.ts) ended with. */
export type RunOutcome =
  | { kind: 'delivered' }
  /** Rendered and kept for later, nothing sent (the worker prepares the backlog while Imagicle refuses uploads). */
  | { kind: 'prepared' }
  | { kind: 'permanent' }
  | { kind: 'held' }
  | { kind: 'retry-later'; retryAfter: string | undefined };

/** What the store must do with the job after a run: nothing more (finished), or run it again after a delay. */
export type Settlement =
  | { kind: 'delivered' }
  | { kind: 'failed'; held: boolean }
  | {
      kind: 'retry';
      delayMs: number;
      /** Imagicle said "not now" (503/429): every worker should pause, not only this one. */
      backpressure: boolean;
    };

/** Statuses that mean "Imagicle is busy": the pause is queue-wide. */
const BACKPRESSURE_STATUSES = new Set([429, 503]);

export interface JobLifeSettings {
  /** Background retries (the worker's backoff). */
  workerPolicy: RetryPolicy;
  /** SPOOL_MAX_AGE: how long a job may wait for delivery, from acceptance or an operator's retry. */
  maxAgeMs: number;
}

export interface JobLifeTools {
  sinks?: readonly JobEventSink[] | undefined;
  metrics?: GatewayMetrics | undefined;
  log: Logger;
}

/** A fresh job in state `received`, its files already where the store keeps them. */
export function newJobRecord(
  init: JobInit,
  inputs: JobRecord['inputs'],
  now = new Date(),
  id: string = randomUUID(),
): JobRecord {
  const stamp = now.toISOString();
  return {
    version: 1,
    id,
    ...init,
    state: 'received',
    createdAt: stamp,
    updatedAt: stamp,
    inputs,
    parts: [],
    attempts: 0,
    nextAttemptAt: undefined,
    lastError: undefined,
    possibleDuplicates: 0,
    deliveredAt: undefined,
    failedAt: undefined,
  };
}

/** How long finished jobs are kept before retention removes them (record, files and pictures). */
export interface JobRetention {
  /** Delivered: for the duplicate window and GET /v1/jobs/{id}. */
  deliveredMs: number;
  /** Failed (refused, expired, held): for an operator to look at and retry. */
  failedMs: number;
}

/** Delivered jobs are kept at least this long (GET /v1/jobs/{id}, the duplicate's replayed answer). */
const MIN_DELIVERED_RETENTION_MS = 3_600_000;

/** The one retention rule: delivered jobs for the duplicate window (an hour at least), failed ones as long again as a job may wait (SPOOL_MAX_AGE), and never less than delivered ones. */
export function jobRetention(dedupWindowMs: number, maxAgeMs: number): JobRetention {
  const deliveredMs = Math.max(dedupWindowMs, MIN_DELIVERED_RETENTION_MS);
  return { deliveredMs, failedMs: Math.max(maxAgeMs, deliveredMs) };
}

/** When retention removes a finished job (epoch ms); undefined while it is open: an open job is never removed by age. */
export function retentionEndsAt(job: JobRecord, retention: JobRetention): number | undefined {
  if (job.state === 'delivered') return Date.parse(job.deliveredAt ?? job.updatedAt) + retention.deliveredMs;
  if (job.state === 'failed') return Date.parse(job.failedAt ?? job.updatedAt) + retention.failedMs;
  return undefined;
}

/** The recording is rendered into its parts (job.parts, set by the caller): ready for delivery attempts. */
export function markRendered(job: JobRecord, contentType: string, decision: string, report: JobReport): void {
  job.contentType = contentType;
  job.decision = decision;
  job.report = report;
  job.prepareFailures = undefined;
  job.state = 'ready';
}

/** A part just rendered: nothing attempted yet. */
export function newPart(rendered: Omit<SpooledPart, 'state' | 'attempts' | 'upstream' | 'deliveredAt'>): SpooledPart {
  return { ...rendered, state: 'pending', attempts: 0, upstream: undefined, deliveredAt: undefined };
}

/** A part another record (the file doors' state) holds as delivered by an earlier run: not sent again. */
export function markDeliveredElsewhere(part: SpooledPart): void {
  part.state = 'delivered';
}

/**
 * A part whose attempt another record (the file doors' state) saw cut short or unanswered: Imagicle may hold it, so
 * it is asked (reconciliation) before it is sent again, as after a crash of this store's own run.
 */
export function markUncertainElsewhere(part: SpooledPart, since: string): void {
  part.uncertainSince = since;
  part.uncertainAnswered = undefined;
  part.uncertainInterrupted = true;
}

/**
 * A run that stopped mid-attempt (a crash, a worker that lost its lease, a shutdown): its part's outcome is
 * unknown. Answers how many attempts were interrupted.
 */
export function recoverInterrupted(job: JobRecord, bodyMayHaveGone = true): number {
  let interrupted = 0;
  for (const part of job.parts) {
    if (part.state !== 'delivering') continue;
    part.state = 'pending';
    if (bodyMayHaveGone) {
      // Imagicle may hold it: asked before it is sent again (reconciliation), else counted as a possible duplicate.
      part.uncertainSince ??= part.deliveredAt ?? job.updatedAt;
      part.uncertainAnswered = undefined;
      part.uncertainInterrupted = true;
    }
    interrupted += 1;
  }
  if (job.state === 'delivering') job.state = 'ready';
  return interrupted;
}

/**
 * A job its store gave up on outside any run (BullMQ failed it after too many stalls): shown failed, its outcome
 * unknown. A view, not a write (no claim is held): an operator's retry reopens it like any failed job.
 */
export function givenUpByStore(job: JobRecord, at: Date, reason: string | undefined): JobRecord {
  return {
    ...job,
    state: 'failed',
    failedAt: at.toISOString(),
    lastError: {
      at: new Date().toISOString(),
      part: undefined,
      status: undefined,
      code: 'QUEUE_FAILED',
      message: reason ?? 'failed by the queue',
      body: undefined,
      ambiguous: true,
    },
  };
}

/** The part's uncertainty is resolved (Imagicle asked, or the rule without reconciliation applied). */
export function clearUncertainty(part: SpooledPart): void {
  part.uncertainSince = undefined;
  part.uncertainAnswered = undefined;
  part.uncertainInterrupted = undefined;
}

/** Before an attempt at a part: journaled so that a crash during it is known afterwards. */
export function beginAttempt(job: JobRecord, part: SpooledPart): void {
  part.state = 'delivering';
  part.attempts += 1;
  job.attempts += 1;
  job.state = 'delivering';
}

export interface AttemptResult {
  response?: UpstreamResponse | undefined;
  error?: GatewayError | undefined;
}

/** After an attempt at a part: Imagicle's answer kept, the part delivered or pending again. */
export function endAttempt(
  job: JobRecord,
  part: SpooledPart,
  verdict: Verdict,
  result: AttemptResult,
  startedAt: number,
): void {
  job.history = pushAttempt(job.history, attemptRecord(part.index, part.attempts, verdict, result, startedAt));
  if (result.response) part.upstream = storedAnswer(result.response);
  if (verdict === 'success') {
    part.state = 'delivered';
    part.deliveredAt = new Date().toISOString();
    clearUncertainty(part);
  } else {
    part.state = 'pending';
    if (verdict === 'ambiguous') {
      part.uncertainSince = new Date(startedAt).toISOString();
      part.uncertainAnswered = result.response?.status === 500 || undefined;
      part.uncertainInterrupted = undefined;
    }
    job.lastError = jobError(part.index, verdict, result);
  }
  job.state = 'ready';
}

/** Imagicle already holds the part (reconciliation): delivered without sending it again. */
export function reconcilePart(job: JobRecord, part: SpooledPart, id: string, others: string[]): void {
  // As Imagicle answers an upload: 201 with the new recording's id as a JSON string.
  part.upstream = { status: 201, contentType: 'application/json', body: JSON.stringify(id), json: id };
  part.state = 'delivered';
  part.deliveredAt = new Date().toISOString();
  part.reconciled = true;
  clearUncertainty(part);
  if (others.length > 0) part.duplicateIds = others;
}

function storedAnswer(response: UpstreamResponse): StoredAnswer {
  return { status: response.status, contentType: response.contentType, body: response.body, json: response.json };
}

function jobError(part: number, verdict: Verdict, result: AttemptResult): JobError {
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

/** The job's error for a failure of the gateway's own (a preparation that threw). */
function gatewayJobError(error: unknown): JobError {
  const gw = toGatewayError(error);
  return {
    at: new Date().toISOString(),
    part: undefined,
    status: gw.status,
    code: gw.code,
    message: gw.message,
    body: gw.toBody(),
    ambiguous: false,
  };
}

/**
 * The one module that moves jobs between states and tells the sinks. A
 * store persists what it decides (`store.save`), always under the job's
 * claim: the caller of these methods holds it.
 */
export class JobLife {
  constructor(
    readonly settings: JobLifeSettings,
    private readonly tools: JobLifeTools,
  ) {}

  /** Records an event on the job (the outbox); returned so the caller publishes it after the save. */
  private record(job: JobRecord, type: JobEventType): JobEvent {
    const event: JobEvent = { id: randomUUID(), type, at: new Date().toISOString() };
    const events = [...(job.events ?? []), event];
    job.events = events.length > MAX_JOB_EVENTS ? events.slice(-MAX_JOB_EVENTS) : events;
    return event;
  }

  /** Saves the job and, once saved, hands the new events to the sinks (a sink's failure never fails the job). */
  async commit(store: JobStore, job: JobRecord, events: readonly JobEvent[] = []): Promise<void> {
    await store.save(job);
    if (events.length > 0) this.publish(job, events);
  }

  /** Hands events to the sinks (also used when a store reopens: sinks are idempotent on the event id). */
  publish(job: JobRecord, events: readonly JobEvent[]): void {
    for (const sink of this.tools.sinks ?? []) {
      try {
        void Promise.resolve(sink.publish(job, events)).catch((error: unknown) =>
          this.tools.log.error({ err: error, jobId: job.id }, 'a job event sink failed'),
        );
      } catch (error) {
        this.tools.log.error({ err: error, jobId: job.id }, 'a job event sink failed');
      }
    }
  }

  /** Every part delivered. */
  async deliver(store: JobStore, job: JobRecord): Promise<void> {
    job.state = 'delivered';
    job.deliveredAt = new Date().toISOString();
    job.nextAttemptAt = undefined;
    job.lastError = undefined;
    job.held = undefined;
    job.callerAuthorization = undefined;
    await this.commit(store, job, [this.record(job, 'recording.delivered')]);
  }

  /** Failed for good (refused, expired), or held: an unknown outcome an operator must look at. */
  async fail(store: JobStore, job: JobRecord, error?: JobError, held = false): Promise<void> {
    if (error) job.lastError = error;
    job.state = 'failed';
    job.failedAt = new Date().toISOString();
    job.nextAttemptAt = undefined;
    job.held = held || undefined;
    await this.commit(store, job, [this.record(job, held ? 'recording.held' : 'recording.failed')]);
  }

  /** The next background attempt, with the worker's backoff; answers the delay. */
  async scheduleRetry(store: JobStore, job: JobRecord, retryAfter: string | undefined): Promise<number> {
    const delay = delayFor(this.settings.workerPolicy, Math.max(1, job.attempts), retryAfter);
    job.state = job.parts.length === 0 ? 'received' : 'ready';
    job.nextAttemptAt = new Date(Date.now() + delay).toISOString();
    // Only the first transient failure since acceptance (or an operator's retry) is told.
    const told = (job.events ?? []).some((e) => e.type === 'recording.retrying');
    await this.commit(store, job, told ? [] : [this.record(job, 'recording.retrying')]);
    return delay;
  }

  /** SPOOL_MAX_AGE passed: the job's error, or undefined while it may still be tried. */
  expiryOf(job: JobRecord, now = Date.now()): JobError | undefined {
    if (now <= Date.parse(job.expiresAt)) return undefined;
    return {
      at: new Date(now).toISOString(),
      part: job.lastError?.part,
      status: job.lastError?.status,
      code: 'EXPIRED',
      message: `Not delivered within SPOOL_MAX_AGE (accepted ${job.createdAt}); last error: ${job.lastError?.message ?? 'none'}`,
      body: job.lastError?.body,
      ambiguous: job.lastError?.ambiguous ?? false,
    };
  }

  /** An operator's retry of a failed job: back to the worker, with a fresh age and event history. */
  reopen(job: JobRecord): void {
    if (job.state !== 'failed')
      throw new GatewayError('CONFLICT', `Job ${job.id} is ${job.state}: only failed jobs can be retried`);
    job.state = job.parts.length === 0 ? 'received' : 'ready';
    job.failedAt = undefined;
    job.nextAttemptAt = undefined;
    job.prepareFailures = undefined;
    job.held = undefined;
    // The operator asked for it: a part whose outcome is unknown is asked about first (RECONCILE=auto), else sent
    // again as after a crash (counted as a possible duplicate), not held again.
    for (const part of job.parts) if (part.uncertainSince !== undefined) part.uncertainInterrupted = true;
    job.expiresAt = new Date(Date.now() + this.settings.maxAgeMs).toISOString();
    // A new round: its first transient failure is told again.
    job.events = (job.events ?? []).filter((e) => e.type !== 'recording.retrying');
  }

  /**
   * What follows a background run: delivered, failed (refused or held), or retried later. The one failure
   * policy: a refusal by the gateway (4xx) fails at once; a full disk or a busy gateway is retried until
   * SPOOL_MAX_AGE; anything else (ffmpeg crashed, a bug) MAX_PREPARE_FAILURES times.
   */
  async settle(
    store: JobStore,
    job: JobRecord,
    ran: { outcome: RunOutcome } | { error: unknown },
    log: Logger,
  ): Promise<Settlement> {
    const { metrics } = this.tools;
    if ('outcome' in ran) {
      switch (ran.outcome.kind) {
        case 'delivered':
          if (job.state !== 'delivered') await this.deliver(store, job);
          log.info(
            { attempts: job.attempts, parts: job.parts.length, possibleDuplicates: job.possibleDuplicates },
            'job delivered',
          );
          return { kind: 'delivered' };
        case 'permanent':
        case 'held': {
          const held = ran.outcome.kind === 'held';
          await this.fail(store, job, undefined, held);
          log.warn({ lastError: job.lastError }, held ? 'job held: Imagicle may have imported it' : 'job failed');
          return { kind: 'failed', held };
        }
        case 'prepared':
          // Ready and due: the next attempt is the store's to schedule.
          job.nextAttemptAt = undefined;
          await this.commit(store, job);
          return { kind: 'retry', delayMs: 0, backpressure: false };
        case 'retry-later': {
          const delayMs = await this.scheduleRetry(store, job, ran.outcome.retryAfter);
          log.info(
            { attempts: job.attempts, nextAttemptAt: job.nextAttemptAt, lastError: job.lastError },
            'job will be retried',
          );
          const status = job.lastError?.status;
          // An answer from Imagicle has no error code (jobError()); the gateway's own errors have one.
          const backpressure =
            status !== undefined && BACKPRESSURE_STATUSES.has(status) && job.lastError?.code === undefined;
          return { kind: 'retry', delayMs, backpressure };
        }
      }
    }
    const { error } = ran;
    const lastError = gatewayJobError(error);
    const refused = error instanceof GatewayError && lastError.status! < 500 && lastError.code !== 'ABORTED';
    const transient = lastError.code === 'INSUFFICIENT_STORAGE' || lastError.code === 'BUSY';
    if (!transient && !refused) job.prepareFailures = (job.prepareFailures ?? 0) + 1;
    if (refused || (job.prepareFailures ?? 0) >= MAX_PREPARE_FAILURES) {
      if (refused) metrics?.refusedInput({ code: lastError.code ?? 'BAD_AUDIO', message: lastError.message });
      await this.fail(store, job, lastError);
      log.warn({ lastError, prepareFailures: job.prepareFailures }, 'job failed while being prepared');
      return { kind: 'failed', held: false };
    }
    job.lastError = lastError;
    const delayMs = await this.scheduleRetry(store, job, undefined);
    const report = transient ? log.warn.bind(log) : log.error.bind(log);
    report({ err: error, nextAttemptAt: job.nextAttemptAt }, 'job run failed; will be retried');
    return { kind: 'retry', delayMs, backpressure: false };
  }
}
