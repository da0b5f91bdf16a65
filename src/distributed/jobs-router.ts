/**
 * The jobs API over the queue, for every process's jobs (same routes and
 * answers as http/jobs.ts over the spool), scoped by owner: another owner's
 * job is a 404.
 *   GET    /v1/jobs?state=…      list (oldest first), optional state filter
 *   GET    /v1/jobs/{id}         one job
 *   POST   /v1/jobs/{id}/retry   a failed job back to the queue
 *   DELETE /v1/jobs/{id}         forget a job and delete its files
 */
import express, { type Request, type Response, type Router } from 'express';
import type { Job, Queue } from 'bullmq';
import { GatewayError } from '../errors.js';
import { JOB_STATES, type JobRecord, type JobState } from '../delivery/job.js';
import { jobView } from '../delivery/view.js';
import type { JobFolders } from '../delivery/blob-store.js';
import { mayAccess, requestOwner, type Owner } from '../http/owner.js';
import type { DistributedJob } from './job-data.js';

/** The most jobs one listing reads from Redis. */
const LIST_LIMIT = 1000;

const notFound = (id: string): GatewayError => new GatewayError('NOT_FOUND', `No job ${id}`);
const conflict = (message: string): GatewayError => new GatewayError('CONFLICT', message);

/** The record to show: BullMQ's own verdict wins when a job failed outside our hands (stalled too often). */
export function shownRecord(bjob: Job<DistributedJob>, bullState: string): JobRecord {
  const job = bjob.data;
  if (bullState === 'failed' && job.state !== 'failed') {
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

export function createQueueJobsRouter(queue: Queue<DistributedJob>, folders: JobFolders, maxAgeMs: number): Router {
  const router = express.Router();
  const visible = (who: Owner, bjob: Job<DistributedJob> | undefined): bjob is Job<DistributedJob> =>
    bjob !== undefined && mayAccess(who, bjob.data.owner);
  const find = async (req: Request<{ id: string }>, res: Response): Promise<Job<DistributedJob>> => {
    const bjob = await queue.getJob(req.params.id);
    if (!visible(requestOwner(req, res), bjob)) throw notFound(req.params.id);
    return bjob;
  };

  router.get('/', async (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : undefined;
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) {
      const message = `state must be one of ${JOB_STATES.join(', ')}`;
      throw new GatewayError('BAD_REQUEST', message);
    }
    const who = requestOwner(req, res);
    const bjobs = await queue.getJobs(
      ['active', 'waiting', 'delayed', 'prioritized', 'completed', 'failed'],
      0,
      LIST_LIMIT - 1,
    );
    const jobs: JobRecord[] = [];
    for (const bjob of bjobs) {
      if (!visible(who, bjob)) continue;
      const shown = shownRecord(bjob, bjob.finishedOn && bjob.failedReason ? 'failed' : 'other');
      if (state === undefined || shown.state === (state as JobState)) jobs.push(shown);
    }
    jobs.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    res.json({ jobs: jobs.map(jobView), count: jobs.length });
  });

  router.get('/:id', async (req, res) => {
    const bjob = await find(req, res);
    res.json(jobView(shownRecord(bjob, await bjob.getState())));
  });

  router.post('/:id/retry', async (req, res) => {
    const bjob = await find(req, res);
    const state = await bjob.getState();
    const job = shownRecord(bjob, state);
    if (state !== 'failed' || job.state !== 'failed')
      throw conflict(`Job ${job.id} is ${job.state}: only failed jobs can be retried`);
    const data = { ...bjob.data };
    data.state = data.parts.length === 0 ? 'received' : 'ready';
    data.failedAt = undefined;
    data.nextAttemptAt = undefined;
    data.expiresAt = new Date(Date.now() + maxAgeMs).toISOString();
    data.updatedAt = new Date().toISOString();
    await bjob.updateData(data);
    await bjob.retry('failed');
    res.status(202).set('Location', `/v1/jobs/${data.id}`).json(jobView(data));
  });

  router.delete('/:id', async (req, res) => {
    const bjob = await find(req, res);
    // remove() refuses a job a worker holds the lock of.
    const removed = await queue.remove(bjob.id!);
    if (!removed) throw conflict(`Job ${bjob.id} is being delivered right now; try again in a moment`);
    await folders.remove(bjob.data.id);
    res.status(204).end();
  });

  return router;
}
