/** What the jobs API shows of a job: never the forwarded credential, never paths. */
import type { JobRecord } from './spool.js';

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
    // The recording as the console shows it (issue 24; the jobs-API contract of "one job life").
    door: 'http' as 'http' | 'import' | 'watch',
    metadata: {
      startDateTime: job.metadata.startDateTime,
      direction: job.metadata.direction,
      localParty: job.metadata.localParty,
      remoteParty: job.metadata.remoteParty,
      notes: job.metadata.notes,
    },
    originalName: job.inputs.attachment.originalName,
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
