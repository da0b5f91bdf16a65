/**
 * What the jobs API (http/jobs.ts, one router) needs from wherever jobs
 * live: the spool (spool-jobs.ts) or the queue (distributed/queue-jobs.ts).
 * Answers are the same in both modes; only the storage differs.
 */
import type { JobPage, JobQuery } from './job-index.js';
import type { JobRecord } from './job.js';

/**
 * `owner` in get, retry and remove: the caller's owner id (undefined: an operator, every owner). A job of
 * another owner, or an id of any shape that names no job, is not found (undefined, or NOT_FOUND): never an error
 * of the store's own (a Redis key of another type, a path outside the store).
 */
export interface JobsBackend {
  /** One page, newest first, with counts per state (the caller's own jobs unless query.owner is undefined). */
  page(query: JobQuery): Promise<JobPage>;
  /** Disk held by an owner's audio (undefined: an operator, the whole store's). */
  heldBytes(owner: string | undefined): Promise<number>;
  get(id: string, owner?: string): Promise<JobRecord | undefined>;
  /** A failed job back to the worker (job-life.ts reopen), under its claim. Answers the reopened record. */
  retry(id: string, owner?: string): Promise<JobRecord>;
  /** Forgets a job and deletes its files, under its claim. */
  remove(id: string, owner?: string): Promise<void>;
  /** The console's picture of one output channel (a PNG file path), when this backend draws them. */
  waveform?(job: JobRecord, channel: number, signal: AbortSignal): Promise<string>;
}

/** What every store's job ids look like (UUIDs): anything else names no job, whatever the store would make of it. */
export const JOB_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The job when `owner` (undefined: an operator) may see it. */
export function ownedBy(job: JobRecord | undefined, owner: string | undefined): JobRecord | undefined {
  return job && (owner === undefined || job.owner === owner) ? job : undefined;
}
