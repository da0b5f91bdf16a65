/**
 * Background delivery of spooled jobs. The spool keeps its open jobs in two
 * schedules (due-queue.ts): those to prepare (received) and those to
 * deliver (ready), each ordered by when they are due, then oldest first.
 * A pass takes jobs from them in O(log N) each; kicks are merged so that at
 * most one pass is pending. What happens to a job after its run is decided
 * by the job-life module (job-life.ts settle()), as for every other store.
 *
 * While Imagicle refuses uploads (503/429, connection errors), a circuit
 * breaker stops the slots from hammering it with retries of the same few
 * jobs: deliveries wait, one probe at a time goes out when the backoff has
 * passed, and the slots keep preparing the backlog (conversion needs no
 * Imagicle), so that the drain is pure delivery once the probe succeeds.
 */
import type { Logger } from '../logger.js';
import { runWithProcessGate, type ProcessGate } from '../media/process.js';
import { JOB_DUE, type DeliveryService } from './service.js';
import type { PrepareSettings } from './run-job.js';
import type { JobRecord } from './job.js';
import { UpstreamBreaker } from './breaker.js';

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

/** Next look at a job whose journal could not be written. */
const DISK_RETRY_MS = 30_000;

export class DeliveryWorker {
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Map<string, Promise<void>>();
  private readonly controller = new AbortController();
  private closing = false;
  private lastPurge = 0;
  private passPending = false;
  readonly breaker: UpstreamBreaker;

  constructor(
    private readonly service: DeliveryService,
    private readonly options: WorkerOptions,
    private readonly log: Logger,
  ) {
    this.breaker = new UpstreamBreaker(service.settings.workerPolicy);
    service.on(JOB_DUE, () => this.kick());
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.options.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Asks for a scheduling pass; kicks that come before it runs are merged into it. */
  kick(): void {
    if (this.closing || this.passPending) return;
    this.passPending = true;
    setImmediate(() => {
      this.passPending = false;
      this.pass();
    });
  }

  /** Jobs being worked on by the worker now. */
  active(): number {
    return this.running.size;
  }

  private pass(): void {
    if (this.closing) return;
    const { spool } = this.service;
    const now = Date.now();
    if (now - this.lastPurge > PURGE_EVERY_MS) {
      this.lastPurge = now;
      void spool
        .purgeFinished(now)
        .catch((error: unknown) => this.log.error({ err: error }, 'purging finished jobs failed'));
    }
    const claim = (id: string): boolean => spool.claim(id);
    while (this.running.size < this.options.concurrency) {
      // Deliveries first (oldest first) while Imagicle takes them; otherwise one probe at most, and preparations.
      const deliveries = this.breaker.allows(now, this.deliveringNow()) ? spool.toDeliver.take(now, claim) : undefined;
      const id = deliveries ?? spool.toPrepare.take(now, claim);
      if (id === undefined) return;
      const job = spool.get(id);
      if (!job) {
        spool.release(id);
        continue;
      }
      this.start1(job, deliveries !== undefined);
    }
  }

  private deliveringNow(): number {
    let n = 0;
    for (const id of this.running.keys()) if (this.service.spool.get(id)?.parts.length) n += 1;
    return n;
  }

  private start1(job: JobRecord, delivering: boolean): void {
    const { spool } = this.service;
    // A job taken to be prepared while Imagicle refuses uploads stops once its parts are ready.
    const prepareOnly = !delivering && !this.breaker.isClosed();
    const run = this.run(job, prepareOnly)
      .catch((error: unknown) => {
        // A journal write failing (ENOSPC) must not become an unhandled rejection: the job is looked at again later.
        job.nextAttemptAt = new Date(Date.now() + DISK_RETRY_MS).toISOString();
        this.log.error({ err: error, jobId: job.id }, 'job run failed; retried later');
      })
      .finally(() => {
        spool.release(job.id);
        this.running.delete(job.id);
        // Back in the schedule with whatever the run decided (a save already did this unless the journal failed).
        spool.reschedule(job);
        this.kick();
      });
    this.running.set(job.id, run);
  }

  private async run(job: JobRecord, prepareOnly: boolean): Promise<void> {
    const { service } = this;
    const { life } = service;
    const log = this.log.child({ jobId: job.id, requestId: job.requestId });
    const expired = life.expiryOf(job);
    if (expired) {
      await life.fail(service.spool, job, expired);
      log.error({ lastError: job.lastError }, 'job expired in the spool');
      return;
    }
    try {
      const policy = { ...service.settings.workerPolicy, maxAttempts: 1 };
      const gate = this.options.gateFor?.(job.inputs.attachment.bytes) ?? OPEN_GATE;
      const wasDelivering = job.parts.length > 0;
      const { outcome } = await runWithProcessGate(gate, () =>
        service.runJob(job, {
          signal: this.controller.signal,
          policy,
          prepare: this.options.prepare,
          log,
          prepareOnly,
        }),
      );
      const settled = await life.settle(service.spool, job, { outcome }, log);
      if (outcome.kind !== 'prepared' && (wasDelivering || job.attempts > 0)) {
        this.breaker.record(settled, job.lastError, Date.now());
      }
    } catch (error) {
      if (this.closing) return;
      try {
        await life.settle(service.spool, job, { error }, log);
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
