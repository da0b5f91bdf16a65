/**
 * What the jobs API (http/jobs.ts, one router) needs from wherever jobs
 * live: the spool (spool-jobs.ts) or the queue (distributed/queue-jobs.ts).
 * Answers are the same in both modes; only the storage differs.
 */
import type { JobPage, JobQuery } from './job-index.js';
import type { JobRecord } from './job.js';

export interface JobsBackend {
  /** One page, newest first, with counts per state (the caller's own jobs unless query.owner is undefined). */
  page(query: JobQuery): Promise<JobPage>;
  /** Disk held by an owner's audio (undefined: an operator, the whole store's). */
  heldBytes(owner: string | undefined): Promise<number>;
  get(id: string): Promise<JobRecord | undefined>;
  /** A failed job back to the worker (job-life.ts reopen), under its claim. Answers the reopened record. */
  retry(id: string): Promise<JobRecord>;
  /** Forgets a job and deletes its files, under its claim. */
  remove(id: string): Promise<void>;
  /** The console's picture of one output channel (a PNG file path), when this backend draws them. */
  waveform?(job: JobRecord, channel: number, signal: AbortSignal): Promise<string>;
}
