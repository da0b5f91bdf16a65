/**
 * The seam between the delivery procedure (run-job.ts) and where jobs live.
 * The file spool (spool.ts) implements it for one process; the BullMQ queue
 * (distributed/queue-store.ts) implements it for many; an in-memory store
 * (memory-store.ts) for one request that keeps nothing (DELIVERY=sync, the
 * file doors). runJob() does not know which one runs.
 */
import type { JobRecord } from './spool.js';

export interface JobStore {
  /**
   * Whether the store keeps jobs across a crash. A durable store gets the
   * fsync plan of docs/delivery.md ("What is fsynced, and when"): rendered
   * parts are fsynced only when the job outlives the run undelivered, and
   * a run that finds parts never fsynced renders them again. A store that
   * keeps nothing (the request's own folder) is never fsynced. Absent: durable.
   */
  readonly durable?: boolean;
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
