/**
 * The webhooks API, mounted on /v1/webhooks behind the /v1 access control:
 *   POST /v1/webhooks/test                          a signed `ping` to the caller's endpoints
 *   GET  /v1/webhooks/jobs/{jobId}                  a job's webhook deliveries
 *   POST /v1/webhooks/deliveries/{id}/resend        a failed (or 410) delivery sent again
 * Scoped like the jobs API: another owner's delivery answers 404.
 */
import express, { type Router } from 'express';
import { requestOwner } from '../http/owner.js';
import type { WebhookService } from './service.js';

export function createWebhooksRouter(webhooks: WebhookService): Router {
  const router = express.Router();

  router.post('/test', async (req, res) => {
    const results = await webhooks.ping(requestOwner(req, res));
    res.status(results.every((r) => r.ok) ? 200 : 502).json({ results });
  });

  router.get('/jobs/:jobId', async (req, res) => {
    res.json({ deliveries: await webhooks.deliveriesFor(req.params.jobId, requestOwner(req, res)) });
  });

  router.post('/deliveries/:id/resend', async (req, res) => {
    const view = await webhooks.resend(req.params.id, requestOwner(req, res));
    res.status(202).json(view);
  });

  return router;
}
