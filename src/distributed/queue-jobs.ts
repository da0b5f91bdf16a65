/**
 * The jobs API over the queue (distributed mode): the same answers as over
 * the spool (http/jobs.ts serves both). Pages and counts come from the
 * Redis indexes (queue-index.ts); a job's record is its BullMQ data.
 */
import type { Job, Queue } from 'bullmq';
import { GatewayError } from '../errors.js';
import type { JobFolders } from '../delivery/blob-store.js';
import type { JobLife } from '../delivery/job-life.js';
import type { JobRecord } from '../delivery/job.js';
import type { JobsBackend } from '../delivery/jobs-backend.js';
import type { DistributedJob } from './job-data.js';
import type { QueueIndex } from './queue-index.js';

/** The record to show: BullMQ's own verdict wins when a job failed outside our hands (stalled too often). */
function shownRecord(bjob: Job<DistributedJob>, bullFailed: boolean): JobRecord {
  const job = bjob.data;
  if (bullFailed && job.state !== 'failed') {
    return {
      ...job,
      state: 'failed',
      failedAt: new Date(bjob.finishedOn ?? Date.now()).toISOString(),
      lastError: {
        at: new Date().toISOString(),
        part: undefined,
        status: undefined,
        code: 'QUEUE_FAILED',
        message: bjob.failedReason,
        body: undefined,
        ambiguous: true,
      },
    };
  }
  return job;
}

export function queueJobsBackend(
  queue: Queue<DistributedJob>,
  index: QueueIndex,
  folders: JobFolders,
  life: JobLife,
): JobsBackend {
  const load = async (id: string): Promise<JobRecord | undefined> => {
    const bjob = await queue.getJob(id);
    if (!bjob?.data?.id) return undefined;
    return shownRecord(bjob, Boolean(bjob.finishedOn && bjob.failedReason));
  };
  return {
    page: (query) => index.page(query, load),
    // The shared folder's space is the operator's to watch (docs/scaling.md); not counted per job here.
    heldBytes: () => Promise.resolve(0),
    get: load,
    retry: async (id) => {
      const bjob = await queue.getJob(id);
      if (!bjob) throw new GatewayError('NOT_FOUND', `No job ${id}`);
      const state = await bjob.getState();
      const shown = shownRecord(bjob, state === 'failed');
      if (state !== 'failed' || shown.state !== 'failed') {
        throw new GatewayError('CONFLICT', `Job ${id} is ${shown.state}: only failed jobs can be retried`);
      }
      const data = { ...bjob.data, ...shown } as DistributedJob;
      life.reopen(data);
      data.updatedAt = new Date().toISOString();
      await bjob.updateData(data);
      await bjob.retry('failed');
      await index.record(data);
      return data;
    },
    remove: async (id) => {
      const bjob = await queue.getJob(id);
      if (!bjob) throw new GatewayError('NOT_FOUND', `No job ${id}`);
      // remove() refuses a job a worker holds the lock of.
      const removed = await queue.remove(id);
      if (!removed) throw new GatewayError('CONFLICT', `Job ${id} is being delivered right now; try again in a moment`);
      await folders.remove(id);
      await index.forget(bjob.data);
    },
  };
}
