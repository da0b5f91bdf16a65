/**
 * The JSON body of a webhook, built from the job record and the jobs API's
 * view of it. It says what happened to a recording and nothing more: no
 * audio, no metadata beyond pbxCallId and the call's start, no credentials
 * (the caller's Authorization, Imagicle's), no secret, and not Imagicle's
 * address (scrubbed from every text it could hide in: an error message, an
 * answer body).
 */
import type { JobEvent } from '../delivery/job-events.js';
import type { JobRecord } from '../delivery/job.js';
import { jobLocation, jobView } from '../delivery/view.js';
import { ownerKeyOf } from './settings.js';

export interface PayloadOptions {
  /** Base of the job link (WEBHOOK_PUBLIC_URL); none: the link is a path. */
  publicUrl: string | undefined;
  /** Texts never to appear in a body (IMAGICLE_URL, its origin, its host), each replaced by "[imagicle]". */
  redact: readonly string[];
}

/** Longest text of Imagicle's answer or of an error kept in a body. */
const MAX_TEXT = 500;

/** The texts that give Imagicle's address away, longest first. */
export function redactionsFor(imagicleUrl: string | undefined): string[] {
  if (!imagicleUrl) return [];
  try {
    const url = new URL(imagicleUrl);
    return [...new Set([imagicleUrl, url.origin, url.host, url.hostname].filter((s) => s.length >= 3))].sort(
      (a, b) => b.length - a.length,
    );
  } catch {
    return [imagicleUrl];
  }
}

function redacted(value: unknown, needles: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') {
    let text = value;
    for (const needle of needles) text = text.split(needle).join('[imagicle]');
    return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
  }
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redacted(v, needles, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redacted(v, needles, depth + 1)]));
}

function jobLink(jobId: string, publicUrl: string | undefined): string {
  return `${publicUrl ?? ''}${jobLocation(jobId)}`;
}

/** The body's data for a job event. */
function eventData(job: Readonly<JobRecord>, event: JobEvent, options: PayloadOptions) {
  const view = jobView(job as JobRecord);
  const error = job.lastError;
  const withError = event.type !== 'recording.delivered' && error !== undefined;
  return {
    jobId: job.id,
    state: job.state,
    pbxCallId: job.metadata.pbxCallId ?? null,
    startDateTime: job.metadata.startDateTime,
    owner: ownerKeyOf(job.owner),
    parts: view.parts.map((p) => ({
      part: p.part,
      of: p.of,
      state: p.state,
      imagicleId: p.id ?? null,
      duration: p.duration,
      bytes: p.bytes,
      deliveredAt: p.deliveredAt ?? null,
    })),
    decision: job.report?.decision ?? (job.decision ? { action: job.decision, reasons: [] } : null),
    attempts: job.attempts,
    possibleDuplicates: job.possibleDuplicates,
    error: withError
      ? {
          at: error.at,
          part: error.part ?? null,
          status: error.status ?? null,
          code: error.code ?? null,
          message: error.message,
          ambiguous: error.ambiguous,
          imagicle: error.body ?? null,
        }
      : null,
    nextAttemptAt: event.type === 'recording.retrying' ? (job.nextAttemptAt ?? null) : null,
    createdAt: job.createdAt,
    deliveredAt: job.deliveredAt ?? null,
    failedAt: job.failedAt ?? null,
    links: { job: jobLink(job.id, options.publicUrl) },
  };
}

/** The body as sent (Standard Webhooks' recommended envelope: type, timestamp, data). */
export function eventBody(job: Readonly<JobRecord>, event: JobEvent, options: PayloadOptions): string {
  const body = { type: event.type, timestamp: event.at, data: eventData(job, event, options) };
  return JSON.stringify(redacted(body, options.redact));
}

/** The body of POST /v1/webhooks/test. */
export function pingBody(owner: string, at: string): string {
  return JSON.stringify({
    type: 'ping',
    timestamp: at,
    data: { owner: ownerKeyOf(owner), message: 'A test from the Imagicle audio gateway: your verifier works.' },
  });
}
