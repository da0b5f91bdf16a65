/**
 * Answers for uploads under DELIVERY=wait (delivery/service.ts decides,
 * this file words it):
 * - delivered in the request: exactly what the gateway answered before the
 *   spool existed (drop-in: Imagicle's own answer; native: the report);
 * - refused by Imagicle for good (400, 401, 403, 409, 501, …): passed
 *   through as it came; nothing stays spooled;
 * - not delivered yet (unreachable, 503/429 after the retries, or Prefer:
 *   respond-async): 202 with the job id and Location: /v1/jobs/{id};
 * - ambiguous and held (RETRY_AMBIGUOUS=false): Imagicle's answer or the
 *   gateway's 502/504, plus X-Job-Id and Location to the held job;
 * - a duplicate: the first upload's answer again, or 409 (DEDUP_ANSWER).
 */
import type { Request, Response } from 'express';
import { Reason } from '../errors.js';
import type { AcceptRequest, AcceptResult, DeliveryService } from '../delivery/service.js';
import type { JobRecord } from '../delivery/spool.js';
import { jobLocation, jobView } from '../delivery/view.js';
import { dropInAnswer, failedPart, summariseParts } from './answer.js';
import { buildReport } from './report.js';

/** `Prefer: respond-async` (RFC 7240), among other preferences or not. */
export function prefersAsync(req: Request): boolean {
  const prefer = req.get('prefer');
  if (!prefer) return false;
  return prefer.split(/[,;]/).some((token) => token.trim().toLowerCase() === 'respond-async');
}

/** What answering an upload needs from delivery: the spool's DeliveryService, or the distributed mode's intake. */
export type UploadDelivery = Pick<DeliveryService, 'accept' | 'settings' | 'checkCapacity'>;

export async function handleSpooledUpload(
  delivery: UploadDelivery,
  request: AcceptRequest,
  res: Response,
  timings: { started: number; receivedMs: number },
): Promise<AcceptResult> {
  const outcome = await delivery.accept(request);
  if (request.preferAsync && outcome.kind === 'accepted') res.set('Preference-Applied', 'respond-async');
  switch (outcome.kind) {
    case 'duplicate':
      sendDuplicate(res, request.mode, outcome.first, delivery.settings.dedupAnswer);
      break;
    case 'accepted':
      sendAccepted(res, outcome.job);
      break;
    case 'done': {
      const { job, result } = outcome;
      res.set('X-Job-Id', job.id);
      if (outcome.outcome !== 'permanent') res.set('Location', jobLocation(job.id));
      if (request.mode === 'drop-in') {
        const [only] = result.deliveries;
        if (result.deliveries.length === 1 && only && !only.upstream && only.error) {
          res.status(only.error.status).set(only.error.headers).json(only.error.toBody());
        } else {
          const answer = dropInAnswer(result);
          res.status(answer.status);
          if (answer.contentType) res.set('Content-Type', answer.contentType);
          res.send(answer.body);
        }
      } else {
        const failed = failedPart(result);
        const status = failed ? (failed.upstream?.status ?? failed.error?.status ?? 502) : 201;
        res.status(status).json({
          ...buildReport(request.requestId, result, { receivedMs: timings.receivedMs, totalMs: performance.now() - timings.started }),
          jobId: job.id,
          jobState: outcome.outcome === 'permanent' ? 'removed' : job.state,
        });
      }
      break;
    }
  }
  return outcome;
}

function sendAccepted(res: Response, job: JobRecord): void {
  res
    .status(202)
    .set({ Location: jobLocation(job.id), 'X-Job-Id': job.id })
    .json({
      jobId: job.id,
      state: job.state,
      location: jobLocation(job.id),
      message:
        job.state === 'received'
          ? 'Accepted: the recording is stored and will be converted and delivered to Imagicle in the background'
          : `Accepted: Imagicle did not take the recording yet (${job.lastError?.message ?? 'not attempted'}); it is stored and will be delivered in the background`,
      nextAttemptAt: job.nextAttemptAt,
      lastError: job.lastError,
    });
}

function sendDuplicate(res: Response, mode: AcceptRequest['mode'], first: JobRecord, policy: 'replay' | 'conflict'): void {
  res.set({ 'X-Duplicate-Of': first.id, Location: jobLocation(first.id) });
  if (policy === 'conflict') {
    res.status(409).json({ reason: Reason.InvalidData, message: `This recording was already received (job ${first.id}, ${first.state})`, duplicateOf: first.id });
    return;
  }
  if (first.state !== 'delivered') {
    sendAccepted(res, first);
    return;
  }
  if (mode === 'native') {
    res.status(200).json({ duplicateOf: first.id, ...jobView(first) });
    return;
  }
  const [only] = first.parts;
  if (first.parts.length === 1 && only?.upstream) {
    res.status(only.upstream.status);
    if (only.upstream.contentType) res.set('Content-Type', only.upstream.contentType);
    res.send(only.upstream.body);
    return;
  }
  res.status(201).json({
    parts: summariseParts(
      first.parts.map((p) => ({
        part: { ...p, path: '' },
        metadata: p.metadata,
        upstream: p.upstream ? { ...p.upstream, retryAfter: undefined, elapsedMs: 0 } : undefined,
        error: undefined,
        delivered: p.state === 'delivered',
        attempted: p.attempts > 0,
      })),
    ),
  });
}
