/** What the jobs API shows of a job: never the forwarded credential, never paths. */
import type { JobRecord } from './job.js';

export function jobLocation(id: string): string {
  return `/v1/jobs/${id}`;
}

export function jobView(job: JobRecord) {
  return {
    jobId: job.id,
    state: job.state,
    mode: job.mode,
    async: job.async,
    requestId: job.requestId,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    expiresAt: job.expiresAt,
    deliveredAt: job.deliveredAt,
    failedAt: job.failedAt,
    nextAttemptAt: job.nextAttemptAt,
    attempts: job.attempts,
    possibleDuplicates: job.possibleDuplicates,
    pbxCallId: job.metadata.pbxCallId,
    startDateTime: job.metadata.startDateTime,
    decision: job.decision,
    lastError: job.lastError,
    upstreamIds: job.parts.filter((p) => p.state === 'delivered').map((p) => p.upstream?.json ?? p.upstream?.body),
    parts: job.parts.map((p) => ({
      part: p.index,
      of: p.count,
      state: p.state,
      attempts: p.attempts,
      status: p.upstream?.status,
      id: p.state === 'delivered' ? (p.upstream?.json ?? p.upstream?.body) : undefined,
      deliveredAt: p.deliveredAt,
      bytes: p.bytes,
      duration: p.isoDuration,
      filename: p.filename,
    })),
    /** Input probe, decision and reasons, output, stereo analysis (once converted). */
    report: job.report,
    /** Every delivery attempt with Imagicle's answer, oldest first. */
    history: job.history ?? [],
    location: jobLocation(job.id),
  };
}

export type JobView = ReturnType<typeof jobView>;
