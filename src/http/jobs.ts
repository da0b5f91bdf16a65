/**
 * The jobs API over the spool:
 *   GET    /v1/jobs?state=…&pbxCallId=…   list (newest last), optional state and pbxCallId filters
 *   GET    /v1/jobs/{id}/waveform/{channel}.png   a picture of one output channel (waveforms.ts)
 *   GET    /v1/jobs/{id}         one job: state, attempts, last error, upstream ids
 *   POST   /v1/jobs/{id}/retry   a failed job back to ready (or received)
 *   DELETE /v1/jobs/{id}         forget a job and delete its files
 * Mounted behind the same access control as the uploads (app.ts: on /v1).
 */
import express, { type RequestHandler, type Router } from 'express';
import { GatewayError, Reason } from '../errors.js';
import type { DeliveryService } from '../delivery/service.js';
import { JOB_STATES, type JobState } from '../delivery/spool.js';
import { jobView } from '../delivery/view.js';

const notFound = (id: string): GatewayError =>
  new GatewayError('NOT_FOUND', `No job ${id}`, { status: 404, reason: Reason.InvalidData });
const conflict = (message: string): GatewayError => new GatewayError('CONFLICT', message, { status: 409, reason: Reason.InvalidData });

/** `access`: for mounting elsewhere than under app.ts's /v1 access control, which already covers /v1/jobs. */
export function createJobsRouter(delivery: DeliveryService, access?: RequestHandler): Router {
  const { spool } = delivery;
  const router = express.Router();
  if (access) router.use(access);

  router.get('/', (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : undefined;
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) {
      throw new GatewayError('BAD_REQUEST', `state must be one of ${JOB_STATES.join(', ')}`, { status: 400, reason: Reason.InvalidData });
    }
    const pbxCallId = typeof req.query.pbxCallId === 'string' ? req.query.pbxCallId.trim() : '';
    const all = spool.list(state as JobState | undefined);
    const jobs = pbxCallId === '' ? all : all.filter((j) => j.metadata.pbxCallId?.includes(pbxCallId));
    res.json({ jobs: jobs.map(jobView), count: jobs.length, spoolBytes: spool.usedBytes() });
  });

  router.get('/:id', (req, res) => {
    const job = spool.get(req.params.id);
    if (!job) throw notFound(req.params.id);
    res.json(jobView(job));
  });

  router.get('/:id/waveform/:channel.png', async (req, res) => {
    const job = spool.get(req.params.id);
    if (!job || !delivery.waveforms) throw notFound(req.params.id);
    const channel = /^\d{1,2}$/.test(req.params.channel) ? Number(req.params.channel) : -1;
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    const file = await delivery.waveforms.picture(job, channel, controller.signal);
    res.set('Cache-Control', 'private, max-age=3600').type('image/png').sendFile(file);
  });

  router.post('/:id/retry', async (req, res) => {
    const job = spool.get(req.params.id);
    if (!job) throw notFound(req.params.id);
    if (job.state !== 'failed') throw conflict(`Job ${job.id} is ${job.state}: only failed jobs can be retried`);
    if (!spool.claim(job.id)) throw conflict(`Job ${job.id} is being worked on`);
    try {
      job.state = job.parts.length === 0 ? 'received' : 'ready';
      job.failedAt = undefined;
      job.nextAttemptAt = undefined;
      job.expiresAt = new Date(Date.now() + delivery.settings.maxAgeMs).toISOString();
      await spool.save(job);
    } finally {
      spool.release(job.id);
    }
    delivery.wake();
    res.status(202).set('Location', `/v1/jobs/${job.id}`).json(jobView(job));
  });

  router.delete('/:id', async (req, res) => {
    const job = spool.get(req.params.id);
    if (!job) throw notFound(req.params.id);
    if (!spool.claim(job.id)) throw conflict(`Job ${job.id} is being delivered right now; try again in a moment`);
    try {
      await spool.remove(job.id);
    } finally {
      spool.release(job.id);
    }
    res.status(204).end();
  });

  return router;
}
