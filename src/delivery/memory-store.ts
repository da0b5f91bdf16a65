/**
 * A JobStore that keeps nothing: the job lives in memory and its files in a
 * folder its caller owns and removes (the request's work folder under
 * DELIVERY=sync, an import's work folder). Nothing is fsynced: when the
 * process dies, the recording is still the caller's (no 201 was sent).
 */
import path from 'node:path';
import type { JobStore } from './job-store.js';
import { JobLife, newJobRecord } from './job-life.js';
import { DEFAULT_RETRY_POLICY } from './retry.js';
import type { Logger } from '../logger.js';
import type { JobRecord } from './job.js';

export class MemoryJobStore implements JobStore {
  readonly fsyncPlan = 'none';

  constructor(private readonly dir: string) {}

  jobDir(): string {
    return this.dir;
  }

  save(job: JobRecord): Promise<void> {
    job.updatedAt = new Date().toISOString();
    return Promise.resolve();
  }

  /** The folder goes as a whole when its owner is done with it. */
  prune(): Promise<void> {
    return Promise.resolve();
  }

  /** One holder, for the life of the call. */
  confirmLease(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A job record for a recording whose files are in `dir`, or held open by its caller and read where they are
 * (RunContext.inputs: recorded with no name in the folder). Memory only: nothing is journaled.
 */
export function memoryJob(
  dir: string,
  init: Pick<JobRecord, 'mode' | 'requestId' | 'metadata' | 'stereoOptions' | 'callerAuthorization'> & {
    owner?: string | undefined;
  },
  files: { attachment: FileInDir; remoteAttachment?: FileInDir | undefined },
  id: string,
): JobRecord {
  const now = new Date();
  const input = (f: FileInDir) => ({
    file: f.readOnly ? '' : relativeTo(dir, f.path),
    originalName: f.originalName,
    extension: f.extension,
    bytes: 0,
  });
  const remote = files.remoteAttachment;
  const inputs = { attachment: input(files.attachment), ...(remote ? { remoteAttachment: input(remote) } : {}) };
  const decided = { dedupKey: undefined, audioSha256: undefined, contentType: undefined, decision: undefined };
  // Never waits for later: it expires as it is created (the call's caller keeps the recording).
  return newJobRecord({ ...init, ...decided, async: false, expiresAt: now.toISOString() }, inputs, now, id);
}

export interface FileInDir {
  path: string;
  originalName: string | undefined;
  extension: string;
  /** Someone else's file, held open by the caller (outside `dir`). */
  readOnly?: boolean | undefined;
}

function relativeTo(dir: string, file: string): string {
  const rel = path.relative(dir, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`a job's file is outside its folder: ${file}`);
  return rel;
}

/**
 * The job-life module for a job kept in memory for one call: it is never scheduled for later (the call's
 * caller retries or keeps its recording), so the background settings do not apply.
 */
export function memoryJobLife(log: Logger): JobLife {
  return new JobLife({ workerPolicy: DEFAULT_RETRY_POLICY, maxAgeMs: 0 }, { log });
}
