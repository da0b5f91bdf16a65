/**
 * The watched folder under `serve` (WATCH_DIR with the spool): every file it
 * takes becomes a job in the gateway's own store, exactly like an upload
 * with `Prefer: respond-async`, its door recorded as `watch`. From then on
 * the job-life module decides its fate (retries through an outage, failure,
 * held); the job is listed by the jobs API and the console and counted in the
 * metrics. The watcher leaves the file in place while its job is open and
 * moves it to done/ or failed/ when the job ends.
 *
 * The file is referenced where it is, never copied into the spool: a recording already in a durable folder
 * needs no second copy, and a backlog of watched files takes no spool space until it is converted. It is
 * opened once (no link, regular files only), fsynced, hashed through that descriptor, and its job records
 * the path, size and SHA-256 (source-reference.ts). The folder belongs to a recorder that may replace any
 * name at any time (docs/security.md): every later read proves the file is still that recording, or the job
 * fails with GONE and the file goes to failed/; nothing else is ever converted under its job.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../logger.js';
import type { AcceptRequest, DoorAudio, UploadDelivery } from '../delivery/service.js';
import type { PrepareSettings } from '../delivery/run-job.js';
import type { JobsBackend } from '../delivery/jobs-backend.js';
import type { JobRecord } from '../delivery/job.js';
import { extensionOf } from '../media/formats.js';
import { referenceTo } from '../source-reference.js';
import { fileReport, type FileReport } from './file-report.js';
import type { ImportItem } from './sources.js';
import { openRegularFile, sha256Opened, UnsafeFileError, type OpenedFile } from '../safe-fs.js';

export interface JobDoorOptions {
  delivery: UploadDelivery;
  jobs: JobsBackend;
  prepare: PrepareSettings;
  /** The owner the folder's jobs belong to (an operator sees them; webhooks may be configured for it). */
  owner: string;
  log: Logger;
}

export interface JobDoor {
  /** Takes a file: its job is created (or found, for the same recording taken before). */
  take(item: ImportItem, signal: AbortSignal): Promise<FileReport>;
  /** The outcome of a job taken earlier, once it has one; undefined while it is open. */
  outcome(item: ImportItem, jobId: string): Promise<FileReport | undefined>;
}

const report = (item: ImportItem, extra: Partial<FileReport>): FileReport => fileReport(item, 'accepted', extra);

/** What an ended job says to the watcher (undefined: still open). */
function ended(item: ImportItem, job: JobRecord | undefined, jobId: string): FileReport | undefined {
  if (!job) return report(item, { status: 'failed', permanent: true, error: `job ${jobId} was removed`, jobId });
  const common = {
    jobId,
    parts: job.parts.length || undefined,
    duration: job.report?.output.duration,
    durationSeconds: job.report?.output.durationSeconds ?? 0,
    decision: job.decision,
    possibleDuplicates: job.possibleDuplicates,
    ids: job.parts.map((p) => idOf(p.upstream?.json ?? p.upstream?.body)).filter((id) => id !== ''),
  };
  if (job.state === 'delivered') return report(item, { ...common, status: 'delivered' });
  if (job.state === 'failed') {
    const error = job.lastError
      ? `${job.lastError.message}${job.lastError.status ? ` (${job.lastError.status})` : ''}`
      : 'failed';
    return report(item, { ...common, status: 'failed', permanent: true, error });
  }
  return undefined;
}

function idOf(answer: unknown): string {
  if (typeof answer === 'string') return answer;
  if (answer && typeof answer === 'object' && 'id' in answer) return String((answer as { id: unknown }).id);
  return '';
}

export function jobDoor(options: JobDoorOptions): JobDoor {
  const { delivery, jobs, log } = options;
  const outcome = async (item: ImportItem, jobId: string): Promise<FileReport | undefined> =>
    ended(item, await jobs.get(jobId), jobId);
  return {
    outcome,
    async take(item, signal) {
      if (item.refused) return report(item, { status: 'failed', error: item.refused, permanent: true });
      if (!item.metadata.ok) return report(item, { status: 'invalid', error: item.metadata.reason });
      const opened: OpenedFile[] = [];
      try {
        const reference = async (file: string): Promise<DoorAudio> => {
          const source = await openRegularFile(file, item.within);
          opened.push(source);
          // What the recorder wrote is on disk before the job that refers to it is (the journal is fsynced next).
          await source.handle.sync();
          const sha256 = await sha256Opened(source, signal);
          return {
            path: source.path,
            originalName: path.basename(file),
            extension: extensionOf(file),
            sha256,
            readOnly: true,
            source: referenceTo(source, item.within, sha256),
          };
        };
        let audio: DoorAudio;
        let remoteAudio: DoorAudio | undefined;
        try {
          audio = await reference(item.path);
          remoteAudio = item.remotePath ? await reference(item.remotePath) : undefined;
        } catch (error) {
          if (error instanceof UnsafeFileError)
            return report(item, { status: 'failed', error: error.message, permanent: true });
          throw error;
        }
        const request: AcceptRequest = {
          mode: 'drop-in',
          door: 'watch',
          requestId: `watch-${randomUUID()}`,
          log,
          signal,
          preferAsync: true,
          metadata: item.metadata.metadata,
          audio,
          remoteAudio,
          stereoOptions: item.stereoOptions,
          callerAuthorization: undefined,
          prepare: options.prepare,
          owner: options.owner,
        };
        const accepted = await delivery.accept(request);
        const id = accepted.kind === 'duplicate' ? accepted.first.id : accepted.job.id;
        log.info({ file: item.display, jobId: id, duplicate: accepted.kind === 'duplicate' }, 'watch: job created');
        return (await outcome(item, id)) ?? report(item, { status: 'accepted', jobId: id });
      } finally {
        await Promise.all(opened.map((o) => o.close()));
      }
    },
  };
}
