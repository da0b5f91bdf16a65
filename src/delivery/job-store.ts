/**
 * The seam between the delivery procedure (run-job.ts) and where jobs live.
 * The file spool (spool.ts) implements it for one process; the BullMQ queue
 * (distributed/queue-store.ts) implements it for many; an in-memory store
 * (memory-store.ts) for one request that keeps nothing (DELIVERY=sync, the
 * file doors). runJob() does not know which one runs.
 */
import type { JobRecord } from './job.js';

export interface JobStore {
  /**
   * When rendered parts are fsynced (docs/delivery.md, "What is fsynced, and when"):
   * - `eager` (absent): as soon as they are rendered, before the record says `ready`;
   * - `deferred`: only when the job outlives the run undelivered (run-job.ts persistFiles, before any 202);
   *   a run that finds parts never fsynced (a crash came first) renders them again from the inputs;
   * - `none`: never: the store keeps nothing across a crash (the request's own folder).
   */
  readonly fsyncPlan?: 'eager' | 'deferred' | 'none';
  /** The folder holding the job's files: inputs until it is ready, then its undelivered parts. */
  jobDir(id: string): string;
  /** Persists the job's current record durably (a part's state before and after each attempt). */
  save(job: JobRecord): Promise<void>;
  /** Deletes the job's files its state no longer needs. */
  prune(job: JobRecord): Promise<void>;
  /**
   * Confirms, right before a delivery attempt, that this process still holds
   * the job (a lease that may have expired). Throws when it does not: an
   * attempt made without the lease could duplicate another holder's.
   */
  confirmLease(job: JobRecord): Promise<void>;
}

/** Thrown by confirmLease() when another process may have taken the job over. */
export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`The lease on job ${jobId} was lost; another worker may hold it`);
    this.name = 'LeaseLostError';
  }
}
