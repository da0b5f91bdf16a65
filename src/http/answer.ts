/**
 * Every answer to an upload, whatever delivered it (delivery/service.ts,
 * delivery/direct.ts or the distributed intake decides; this file words it):
 * - delivered in the request: one part: Imagicle's own answer, unchanged;
 *   several parts: 201 with every part listed (native: the report);
 * - a part not delivered: that part's failure with the list of what was and
 *   was not delivered (no silent partial success); under DELIVERY=sync a
 *   single recording Imagicle did not answer for is the gateway's 502/504;
 * - refused by Imagicle for good (400, 401, 403, 409, 501, …): passed
 *   through as it came; nothing stays spooled;
 * - not delivered yet (unreachable, 503/429 after the retries, or Prefer:
 *   respond-async): 202 with the job id and Location: /v1/jobs/{id};
 * - ambiguous and held (RETRY_AMBIGUOUS=false): Imagicle's answer or the
 *   gateway's 502/504, plus X-Job-Id and Location to the held job;
 * - a duplicate: the first upload's answer again, or 409 (DEDUP_ANSWER).
 */
import type { Request, Response } from 'express';
import { badRequest, Reason } from '../errors.js';
import { imagicleErrorSchema } from '../imagicle/schema.js';
import type { IngestResult, PartDelivery } from '../pipeline/ingest.js';
import type { AcceptRequest, AcceptResult, UploadDelivery } from '../delivery/service.js';
import { JOB_DOORS, type JobDoor, type JobRecord } from '../delivery/job.js';
import { jobLocation, jobView } from '../delivery/view.js';
import { buildReport, summariseParts } from './report.js';

export type { UploadDelivery };

interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** The failing part, when there is one. */
function failedPart(result: IngestResult): PartDelivery | undefined {
  return result.deliveries.find((d) => d.attempted && !d.delivered);
}

function dropInAnswer(result: IngestResult): Answer {
  const [only] = result.deliveries;
  if (result.deliveries.length === 1 && only?.upstream) {
    return { status: only.upstream.status, contentType: only.upstream.contentType, body: only.upstream.body };
  }
  const parts = summariseParts(result.deliveries);
  const failed = failedPart(result);
  if (!failed) return json(201, { parts });
  const status = failed.upstream?.status ?? failed.error?.status ?? 502;
  const upstreamError = imagicleErrorSchema.safeParse(failed.upstream?.json);
  const delivered = parts.filter((p) => p.delivered).map((p) => p.part);
  const cause = upstreamError.success
    ? upstreamError.data.message
    : (failed.error?.message ?? `Imagicle answered ${status}`);
  return json(status, {
    reason: upstreamError.success ? upstreamError.data.reason : (failed.error?.reason ?? 0),
    message:
      `Part ${failed.part.index} of ${failed.part.count} was not delivered (${cause}). ` +
      (delivered.length > 0 ? `Parts ${delivered.join(', ')} were delivered; ` : 'No part was delivered; ') +
      `parts ${failed.part.index}–${failed.part.count} were not.`,
    parts,
  });
}

function json(status: number, value: unknown): Answer {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(value) };
}

/** `Prefer: respond-async` (RFC 7240), among other preferences or not. */
export function prefersAsync(req: Request): boolean {
  const prefer = req.get('prefer');
  if (!prefer) return false;
  return prefer.split(/[,;]/).some((token) => token.trim().toLowerCase() === 'respond-async');
}

/** The header a file door (import, watch run as commands with --gateway) labels its own jobs with. */
const DOOR_HEADER = 'X-Gateway-Door';

/**
 * The caller's label for how the recording reached it (`import`, `watch`), shown in the jobs API, the console and
 * the metrics; absent: `http`. Only a label of the caller's own job: it grants nothing.
 */
export function doorOf(req: Request): JobDoor {
  const value = req.get(DOOR_HEADER)?.trim().toLowerCase();
  if (value === undefined || value === '') return 'http';
  if (!(JOB_DOORS as readonly string[]).includes(value))
    throw badRequest(`${DOOR_HEADER} must be one of ${JOB_DOORS.join(', ')}`);
  return value as JobDoor;
}

export async function answerUpload(
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
      const only = unansweredSingle(result);
      if (request.mode === 'drop-in' && only) res.status(only.status).set(only.headers).json(only.toBody());
      else {
        sendResult(res, request, result, timings, { jobId: job.id, jobState: job.state });
      }
      break;
    }
    case 'answered': {
      // Nothing kept (DELIVERY=sync): a single recording Imagicle did not answer for is the plain 502/504.
      const only = unansweredSingle(outcome.result);
      if (only) throw only;
      sendResult(res, request, outcome.result, timings, {});
      break;
    }
  }
  return outcome;
}

/** A recording of one part that Imagicle did not answer for (unreachable, timeout): the gateway's error. */
function unansweredSingle(result: IngestResult) {
  const [only] = result.deliveries;
  return result.deliveries.length === 1 && only && !only.upstream && only.error ? only.error : undefined;
}

/** Drop-in: Imagicle's answer, or the list of parts. Native: the report, with the failing part's status. */
function sendResult(
  res: Response,
  request: AcceptRequest,
  result: IngestResult,
  timings: { started: number; receivedMs: number },
  job: { jobId?: string; jobState?: string },
): void {
  if (request.mode === 'drop-in') {
    const answer = dropInAnswer(result);
    res.status(answer.status);
    if (answer.contentType) res.set('Content-Type', answer.contentType);
    res.send(answer.body);
    return;
  }
  const failed = failedPart(result);
  const status = failed ? (failed.upstream?.status ?? failed.error?.status ?? 502) : 201;
  const totalMs = performance.now() - timings.started;
  const report = buildReport(request.requestId, result, { receivedMs: timings.receivedMs, totalMs });
  res.status(status).json({ ...report, ...job });
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
          : `Accepted: Imagicle did not take the recording yet (${job.lastError?.message ?? 'not attempted'}); ` +
            'it is stored and will be delivered in the background',
      nextAttemptAt: job.nextAttemptAt,
      lastError: job.lastError,
    });
}

function sendDuplicate(
  res: Response,
  mode: AcceptRequest['mode'],
  first: JobRecord,
  policy: 'replay' | 'conflict',
): void {
  res.set({ 'X-Duplicate-Of': first.id, Location: jobLocation(first.id) });
  if (policy === 'conflict') {
    const message = `This recording was already received (job ${first.id}, ${first.state})`;
    res.status(409).json({ reason: Reason.InvalidData, message, duplicateOf: first.id });
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
