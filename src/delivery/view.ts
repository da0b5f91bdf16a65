/** What the jobs API shows of a job: never the forwarded credential, never paths. */
import type { JobRecord } from './job.js';

export function jobLocation(id: string): string {
  return `/v1/jobs/${id}`;
}

export function jobView(job: JobRecord) {
  return {
    jobId: job.id,
    state: job.state,
    /** Failed because an attempt's outcome is unknown: Imagicle may hold the recording. */
    held: job.held === true,
    door: job.door ?? 'http',
    owner: job.owner,
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
    metadata: {
      startDateTime: job.metadata.startDateTime,
      direction: job.metadata.direction,
      localParty: { username: job.metadata.localParty?.username, phoneNumber: job.metadata.localParty?.phoneNumber },
      remoteParty: { phoneNumber: job.metadata.remoteParty?.phoneNumber },
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
      imagicleId: p.state === 'delivered' ? imagicleIdOf(p.upstream?.json) : undefined,
      /** Found in Imagicle by reconciliation: not sent again. */
      reconciled: p.reconciled === true,
      duplicateIds: p.duplicateIds,
      deliveredAt: p.deliveredAt,
      bytes: p.bytes,
      duration: p.isoDuration,
      filename: p.filename,
    })),
    /** Input probe, decision and reasons, output, stereo analysis (once converted). */
    report: job.report,
    /** Every delivery attempt with Imagicle's answer, oldest first. */
    history: job.history ?? [],
    /** What the job-life module told its followers (webhooks), oldest first. */
    events: job.events ?? [],
    location: jobLocation(job.id),
  };
}

function imagicleIdOf(json: unknown): string | undefined {
  const id = (json as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

export type JobView = ReturnType<typeof jobView>;
