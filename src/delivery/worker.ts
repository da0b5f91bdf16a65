/**
 * Background delivery of spooled jobs: picks due jobs (received: prepare
 * first; ready: next undelivered part), one attempt per part per run, then
 * schedules the next run with backoff, until SPOOL_MAX_AGE; a permanent
 * answer or the end of the age marks the job failed, the answer kept.
 */
import type { Logger } from '../logger.js';
import { runWithProcessGate, type ProcessGate } from '../media/process.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { JOB_DUE, type DeliveryService, type PrepareSettings } from './service.js';
import type { JobRecord } from './spool.js';

export interface WorkerOptions {
  /** Jobs worked on at once. */
  concurrency: number;
  /** How often due jobs are looked for (they are also looked for on every kick). */
  pollMs: number;
  prepare: PrepareSettings;
  /** Admission of the worker's ffmpeg runs (the request queue's), by input size; none: unlimited. */
  gateFor?: (bytes: number) => ProcessGate;
}

/** Lets every process run: also what keeps a kick from inside a request from borrowing that request's gate. */
const OPEN_GATE: ProcessGate = { acquire: () => Promise.resolve(() => undefined) };

const PURGE_EVERY_MS = 60_000;

/** Failed preparations (not a full disk, not busy) after which a job is failed rather than retried. */
export const MAX_PREPARE_FAILURES = 3;

/** Next look at a job whose journal could not be written. */
const DISK_RETRY_MS = 30_000;

export class DeliveryWorker {
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Map<string, Promise<void>>();
  private readonly controller = new AbortController();
  private closing = false;
  private lastPurge = 0;

  constructor(
    private readonly service: DeliveryService,
    private readonly options: WorkerOptions,
    private readonly log: Logger,
  ) {
    service.on(JOB_DUE, () => this.kick());
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.pollMs);
    this.timer.unref();
    this.kick();
  }

  kick(): void {
    if (!this.closing) setImmediate(() => this.tick());
  }

  /** Jobs being worked on by the worker now. */
  active(): number {
    return this.running.size;
  }

  private tick(): void {
    if (this.closing) return;
    const { spool } = this.service;
    const now = Date.now();
    if (now - this.lastPurge > PURGE_EVERY_MS) {
      this.lastPurge = now;
      void spool
        .purgeDelivered(now)
        .catch((error: unknown) => this.log.error({ err: error }, 'purging delivered jobs failed'));
    }
    for (const job of spool.list()) {
      if (this.running.size >= this.options.concurrency) break;
      if (job.state !== 'received' && job.state !== 'ready') continue;
      if (job.nextAttemptAt !== undefined && Date.parse(job.nextAttemptAt) > now) continue;
      if (!spool.claim(job.id)) continue;
      const run = this.run(job)
        .catch((error: unknown) => {
          // A journal write failing (ENOSPC) must not become an unhandled rejection: the job is looked at again later.
          job.nextAttemptAt = new Date(Date.now() + DISK_RETRY_MS).toISOString();
          this.log.error({ err: error, jobId: job.id }, 'job run failed; retried later');
        })
        .finally(() => {
          spool.release(job.id);
          this.running.delete(job.id);
          this.kick();
        });
      this.running.set(job.id, run);
    }
  }

  private async run(job: JobRecord): Promise<void> {
    const { service } = this;
    const log = this.log.child({ jobId: job.id, requestId: job.requestId });
    if (Date.now() > Date.parse(job.expiresAt)) {
      await service.fail(job, {
        at: new Date().toISOString(),
        part: job.lastError?.part,
        status: job.lastError?.status,
        code: 'EXPIRED',
        message: `Not delivered within SPOOL_MAX_AGE (accepted ${job.createdAt}); last error: ${job.lastError?.message ?? 'none'}`,
        body: job.lastError?.body,
        ambiguous: job.lastError?.ambiguous ?? false,
      });
      log.error({ lastError: job.lastError }, 'job expired in the spool');
      return;
    }
    try {
      const policy = { ...service.settings.workerPolicy, maxAttempts: 1 };
      const gate = this.options.gateFor?.(job.inputs.attachment.bytes) ?? OPEN_GATE;
      const { outcome } = await runWithProcessGate(gate, () =>
        service.runJob(job, { signal: this.controller.signal, policy, prepare: this.options.prepare, log }),
      );
      switch (outcome.kind) {
        case 'delivered':
          log.info(
            { attempts: job.attempts, parts: job.parts.length, possibleDuplicates: job.possibleDuplicates },
            'job delivered',
          );
          return;
        case 'permanent':
        case 'held':
          await service.fail(job);
          log.warn(
            { lastError: job.lastError },
            outcome.kind === 'held' ? 'job held: Imagicle may have imported it' : 'job failed',
          );
          return;
        case 'retry-later':
          await service.schedule(job, outcome.retryAfter);
          log.info(
            { attempts: job.attempts, nextAttemptAt: job.nextAttemptAt, lastError: job.lastError },
            'job will be retried',
          );
          return;
      }
    } catch (error) {
      if (this.closing) return;
      const gw = toGatewayError(error);
      const lastError = {
        at: new Date().toISOString(),
        part: undefined,
        status: gw.status,
        code: gw.code,
        message: gw.message,
        body: gw.toBody(),
        ambiguous: false,
      };
      // The gateway's own refusal of the audio cannot change: failed at once. A full disk or a busy gateway passes:
      // retried until SPOOL_MAX_AGE, the job kept. Anything else (ffmpeg crashed, a bug) is retried a few times only,
      // so a held or async job never loops on an error no retry can fix.
      const transient = gw.code === 'INSUFFICIENT_STORAGE' || gw.code === 'BUSY';
      if (!transient) job.prepareFailures = (job.prepareFailures ?? 0) + 1;
      try {
        if ((error instanceof GatewayError && gw.status < 500) || (job.prepareFailures ?? 0) >= MAX_PREPARE_FAILURES) {
          if (error instanceof GatewayError && gw.status < 500) this.options.prepare.metrics?.refusedInput(gw);
          await service.fail(job, lastError);
          log.warn({ lastError, prepareFailures: job.prepareFailures }, 'job failed while being prepared');
        } else {
          job.lastError = lastError;
          await service.schedule(job, undefined);
          const report = transient ? log.warn.bind(log) : log.error.bind(log);
          report({ err: error, nextAttemptAt: job.nextAttemptAt }, 'job run failed; will be retried');
        }
      } catch (saveError) {
        // The journal itself could not be written (a full disk): the job stays as it is in memory and on disk,
        // and the next attempt is scheduled in memory only; it resumes when space returns.
        job.nextAttemptAt = new Date(Date.now() + DISK_RETRY_MS).toISOString();
        log.error({ err: saveError, nextAttemptAt: job.nextAttemptAt }, 'cannot journal the job; retried later');
      }
    }
  }

  /** Stops picking jobs, aborts the running ones (their attempts count as interrupted) and waits for them. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    this.controller.abort();
    await Promise.allSettled([...this.running.values()]);
  }
}
