/**
 * What a distributed job carries in Redis: the spool's JobRecord (the same
 * states, parts, answers and errors), plus its owner and what the api
 * process needs to answer a waiting caller. Never audio: that stays in
 * BLOB_DIR/jobs/<id>/.
 */
import path from 'node:path';
import { dedupKey, type CallIdentity } from '../delivery/dedup.js';
import type { JobRecord } from '../delivery/job.js';
import type { FittedAudio } from '../pipeline/fit.js';
import type { PreparedAudio } from '../pipeline/prepared.js';

export const QUEUE_NAME = 'imagicle-deliveries';
/** BullMQ's job name for a recording (one kind of job so far). */
export const JOB_NAME = 'deliver';

/** What the native report needs from the render, without paths into BLOB_DIR. */
export interface RenderedSummary {
  prepared: Omit<PreparedAudio, 'path'>;
  oversize: FittedAudio['oversize'];
}

export interface DistributedJob extends JobRecord {
  /** Who sent it: jobs API and duplicate suppression are scoped by it (http/owner.ts). */
  owner: string;
  /** When the first delivery attempt started: the waiting caller's budget (RETRY_MAX_TOTAL_MS) counts from there. */
  firstAttemptAt: string | undefined;
  /** Set once the audio is rendered, for the caller's report. */
  rendered: RenderedSummary | undefined;
}

/** Published with job.updateProgress() after a run that will be retried: the waiting api process decides on a 202. */
export interface RetryProgress {
  kind: 'retry-later';
  attempts: number;
  nextAttemptAt: string;
  firstAttemptAt: string | undefined;
}

/** BullMQ's deduplication id: one owner's recording (pbxCallId or the call's metadata + audio hashes), whichever api process got it. */
export function deduplicationId(owner: string, call: CallIdentity, audioHashes: readonly string[]): string {
  return dedupKey(owner, call, audioHashes);
}

export function summariseRender(fitted: FittedAudio): RenderedSummary {
  const { path: _path, ...prepared } = fitted.prepared;
  return { prepared, oversize: fitted.oversize };
}

/** Where every process finds a job's files. */
export function jobsRoot(blobDir: string): string {
  return path.join(blobDir, 'jobs');
}
