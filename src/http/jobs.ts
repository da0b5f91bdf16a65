/**
 * The jobs API over the spool:
 *   GET    /v1/jobs?state=…&pbxCallId=…   list (newest last), optional state and pbxCallId filters
 *   GET    /v1/jobs/{id}/waveform/{channel}.png   a picture of one output channel (waveforms.ts)
 *   GET    /v1/jobs/{id}         one job: state, attempts, last error, upstream ids
 *   POST   /v1/jobs/{id}/retry   a failed job back to ready (or received)
 *   DELETE /v1/jobs/{id}         forget a job and delete its files
 * Mounted behind the same access control as the uploads (app.ts: on /v1).
 * Every verb is scoped to the caller's own jobs (http/owner.ts): another
 * owner's job answers 404 exactly like an unknown id; an operator key
 * (GATEWAY_ADMIN_KEYS) sees them all.
 */
import express, { type RequestHandler, type Router } from 'express';
import { GatewayError } from '../errors.js';
import type { DeliveryService } from '../delivery/service.js';
import { JOB_STATES, type JobState } from '../delivery/job.js';
import { jobView } from '../delivery/view.js';
import type { JobRecord } from '../delivery/job.js';
import { mayAccess, requestOwner } from './owner.js';

const notFound = (id: string): GatewayError => new GatewayError('NOT_FOUND', `No job ${id}`);
const conflict = (message: string): GatewayError => new GatewayError('CONFLICT', message);

const CLAIM_WAIT_MS = 1000;
const CLAIM_POLL_MS = 50;

/** `access`: for mounting elsewhere than under app.ts's /v1 access control, which already covers /v1/jobs. */
export function createJobsRouter(delivery: DeliveryService, access?: RequestHandler): Router {
  const { spool } = delivery;
  const router = express.Router();
  if (access) router.use(access);

  /** The job when this caller may see it; 404 otherwise, the same answer as for an id that does not exist. */
  const ownedJob = (req: express.Request, res: express.Response): JobRecord => {
    const raw: unknown = req.params.id;
    const id = typeof raw === 'string' ? raw : '';
    const job = spool.get(id);
    if (!job || !mayAccess(requestOwner(req, res), job.owner)) throw notFound(id);
    return job;
  };

  /**
   * Claims a job, waiting a moment for a run that is finishing: the worker releases a job just after its last
   * journal write, so a client that saw "delivered" or "failed" may come before the release.
   */
  const claimSoon = async (id: string): Promise<boolean> => {
    for (let waited = 0; ; waited += CLAIM_POLL_MS) {
      if (spool.claim(id)) return true;
      if (waited >= CLAIM_WAIT_MS) return false;
      await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
    }
  };

  router.get('/', (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : undefined;
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) {
      throw new GatewayError('BAD_REQUEST', `state must be one of ${JOB_STATES.join(', ')}`);
    }
    const pbxCallId = typeof req.query.pbxCallId === 'string' ? req.query.pbxCallId.trim() : '';
    const owner = requestOwner(req, res);
    const owned = spool.list(state as JobState | undefined).filter((job) => mayAccess(owner, job.owner));
    const jobs = pbxCallId === '' ? owned : owned.filter((j) => j.metadata.pbxCallId?.includes(pbxCallId));
    // The spool's total is the operator's business; a tenant sees the bytes of its own jobs.
    const spoolBytes = owner.admin ? spool.usedBytes() : owned.reduce((sum, job) => sum + spool.bytesOf(job.id), 0);
    res.json({ jobs: jobs.map(jobView), count: jobs.length, spoolBytes });
  });

  router.get('/:id', (req, res) => {
    res.json(jobView(ownedJob(req, res)));
  });

  router.get('/:id/waveform/:channel.png', async (req, res) => {
    const job = ownedJob(req, res);
    if (!delivery.waveforms) throw notFound(req.params.id);
    const channel = /^\d{1,2}$/.test(req.params.channel) ? Number(req.params.channel) : -1;
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    const file = await delivery.waveforms.picture(job, channel, controller.signal);
    res.set('Cache-Control', 'private, max-age=3600').type('image/png').sendFile(file);
  });

  router.post('/:id/retry', async (req, res) => {
    const seen = ownedJob(req, res);
    if (seen.state !== 'failed') throw conflict(`Job ${seen.id} is ${seen.state}: only failed jobs can be retried`);
    if (!(await claimSoon(seen.id))) throw conflict(`Job ${seen.id} is being worked on`);
    // The record as it is now (a run that was finishing may have replaced or removed it).
    const job = spool.get(seen.id);
    try {
      if (!job) throw notFound(seen.id);
      if (job.state !== 'failed') throw conflict(`Job ${job.id} is ${job.state}: only failed jobs can be retried`);
      job.state = job.parts.length === 0 ? 'received' : 'ready';
      job.failedAt = undefined;
      job.nextAttemptAt = undefined;
      job.prepareFailures = undefined;
      job.expiresAt = new Date(Date.now() + delivery.settings.maxAgeMs).toISOString();
      await spool.save(job);
    } finally {
      spool.release(seen.id);
    }
    delivery.wake();
    res.status(202).set('Location', `/v1/jobs/${job.id}`).json(jobView(job));
  });

  router.delete('/:id', async (req, res) => {
    const job = ownedJob(req, res);
    if (!(await claimSoon(job.id))) throw conflict(`Job ${job.id} is being delivered right now; try again in a moment`);
    try {
      await spool.remove(job.id);
    } finally {
      spool.release(job.id);
    }
    res.status(204).end();
  });

  return router;
}
