/**
 * The JobStore over one BullMQ job held by this worker: the record is the
 * job's data (job.updateData), the files are in BLOB_DIR/jobs/<id>/, and the
 * lease is BullMQ's lock, extended (and so checked) before every delivery
 * attempt: a worker whose lock expired must not deliver, another one may
 * have taken the job over.
 */
import type { Job } from 'bullmq';
import { JobFolders } from '../delivery/blob-store.js';
import { LeaseLostError, type JobStore } from '../delivery/job-store.js';
import { recoverInterrupted } from '../delivery/job-life.js';
import type { JobRecord } from '../delivery/job.js';
import type { DistributedJob } from './job-data.js';
import type { QueueIndex } from './queue-index.js';

export class QueueJobStore implements JobStore {
  constructor(
    private readonly job: Job<DistributedJob>,
    private readonly token: string,
    private readonly folders: JobFolders,
    private readonly lockDurationMs: number,
    private readonly index: QueueIndex,
  ) {}

  jobDir(id: string): string {
    return this.folders.dirFor(id);
  }

  async save(record: JobRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    await this.job.updateData(record as DistributedJob);
    // The record is saved; an index write lost to a Redis hiccup is made good by the job's next save.
    await this.index.record(record).catch(() => undefined);
  }

  async prune(record: JobRecord): Promise<void> {
    await this.folders.prune(record);
  }

  async confirmLease(record: JobRecord): Promise<void> {
    // extendLock answers 0 when the lock is gone or belongs to another worker's token.
    const extended = await this.job.extendLock(this.token, this.lockDurationMs);
    if (!extended) throw new LeaseLostError(this.job.id ?? 'unknown');
    const data = record as DistributedJob;
    data.firstAttemptAt ??= new Date().toISOString();
  }
}

/**
 * A job this worker has just taken (BullMQ's lock, `token`): its store, and its record as the job-life module
 * recovers it when the previous holder died mid-attempt (the spool does the same when it opens). Answers how
 * many attempts were interrupted; the recovered record is saved before anything else happens to it.
 */
export async function holdQueuedJob(
  bjob: Job<DistributedJob>,
  token: string,
  folders: JobFolders,
  lockMs: number,
  index: QueueIndex,
): Promise<{ store: QueueJobStore; job: DistributedJob; interrupted: number }> {
  const store = new QueueJobStore(bjob, token, folders, lockMs, index);
  const job = bjob.data;
  const interrupted = recoverInterrupted(job);
  if (interrupted > 0) await store.save(job);
  return { store, job, interrupted };
}
