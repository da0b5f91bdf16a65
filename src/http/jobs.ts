/**
 * The jobs API, one router whatever holds the jobs (delivery/jobs-backend.ts:
 * the spool, or the queue in the distributed mode):
 *   GET    /v1/jobs?limit=&cursor=&state=&door=&q=&pbxCallId=&from=&to=
 *          a page, newest first, with counts per state
 *   GET    /v1/jobs/{id}/waveform/{channel}.png   a picture of one output channel
 *   GET    /v1/jobs/{id}         one job: state, attempts, last error, upstream ids
 *   POST   /v1/jobs/{id}/retry   a failed job back to the worker
 *   DELETE /v1/jobs/{id}         forget a job and delete its files
 * Mounted behind the same access control as the uploads (app.ts: on /v1).
 * Every verb is scoped to the caller's own jobs (http/owner.ts): another
 * owner's job, or an id of any shape that is not a job, answers 404; an
 * operator key (GATEWAY_ADMIN_KEYS) sees them all.
 */
import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { JOB_DOORS, JOB_STATES, type JobRecord } from '../delivery/job.js';
import type { JobsBackend } from '../delivery/jobs-backend.js';
import { jobView } from '../delivery/view.js';
import { mayAccess, requestOwner, type Owner } from './owner.js';

const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

const notFound = (id: string): GatewayError => new GatewayError('NOT_FOUND', `No job ${id}`);

const instant = z
  .string()
  .refine((v) => !Number.isNaN(Date.parse(v)), 'must be a date-time (ISO 8601)')
  .transform((v) => Date.parse(v));
const text = z
  .string()
  .trim()
  .max(200)
  .transform((v) => (v === '' ? undefined : v));

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(DEFAULT_PAGE),
  cursor: z
    .string()
    .regex(/^[0-9a-z]{1,16}$/, 'is not a cursor this API gave')
    .optional(),
  state: z.enum(JOB_STATES).optional(),
  door: z.enum(JOB_DOORS).optional(),
  q: text.optional(),
  /** The older name of the search, kept for existing callers. */
  pbxCallId: text.optional(),
  from: instant.optional(),
  to: instant.optional(),
});

/** What a job's detail adds from beside the store: its webhooks (webhooks/service.ts), scoped to the caller. */
export type JobExtras = (jobId: string, owner: Owner) => Promise<Record<string, unknown>>;

/** `access`: for mounting elsewhere than under app.ts's /v1 access control, which already covers /v1/jobs. */
export function createJobsRouter(backend: JobsBackend, access?: RequestHandler, extras?: JobExtras): Router {
  const router = express.Router();
  if (access) router.use(access);

  /** The job when this caller may see it; 404 otherwise, the same answer as for an id that does not exist. */
  const ownedJob = async (req: express.Request, res: express.Response): Promise<JobRecord> => {
    const raw: unknown = req.params.id;
    const id = typeof raw === 'string' ? raw : '';
    const owner = requestOwner(req, res);
    // The backend scopes too (jobs-backend.ts); checked here as well, the one rule every verb goes through.
    const job = await backend.get(id, owner.admin ? undefined : owner.id);
    if (!job || !mayAccess(owner, job.owner)) throw notFound(id);
    return job;
  };

  router.get('/', async (req, res) => {
    const parsed = listQuery.safeParse(req.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new GatewayError('BAD_REQUEST', `${issue.path.join('.') || 'query'}: ${issue.message}`);
    }
    const query = parsed.data;
    const owner = requestOwner(req, res);
    const scope = owner.admin ? undefined : owner.id;
    const page = await backend.page({
      owner: scope,
      state: query.state,
      door: query.door,
      q: query.q ?? query.pbxCallId,
      fromMs: query.from,
      toMs: query.to,
      limit: query.limit,
      cursor: query.cursor,
    });
    // The spool's total is the operator's business; a tenant sees the bytes of its own jobs.
    const spoolBytes = await backend.heldBytes(scope);
    res.json({
      jobs: page.jobs.map(jobView),
      count: page.jobs.length,
      nextCursor: page.nextCursor,
      counts: page.counts,
      spoolBytes,
    });
  });

  router.get('/:id', async (req, res) => {
    const job = await ownedJob(req, res);
    const more = extras ? await extras(job.id, requestOwner(req, res)) : {};
    res.json({ ...jobView(job), ...more });
  });

  router.get('/:id/waveform/:channel.png', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!backend.waveform) throw notFound(job.id);
    const channel = /^\d{1,2}$/.test(req.params.channel) ? Number(req.params.channel) : -1;
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    const file = await backend.waveform(job, channel, controller.signal);
    res.set('Cache-Control', 'private, max-age=3600').type('image/png').sendFile(file);
  });

  router.post('/:id/retry', async (req, res) => {
    const seen = await ownedJob(req, res);
    const job = await backend.retry(seen.id);
    res.status(202).set('Location', `/v1/jobs/${job.id}`).json(jobView(job));
  });

  router.delete('/:id', async (req, res) => {
    const job = await ownedJob(req, res);
    await backend.remove(job.id);
    res.status(204).end();
  });

  return router;
}
