/**
 * Retention over the queue, by the one rule (job-life.ts retentionEndsAt),
 * as the spool's purgeFinished(): a finished job (completed or failed) whose
 * retention is over goes with its folder in BLOB_DIR (waveform pictures) and
 * its index entries. BullMQ's own removeOnComplete would leave the folder
 * and the index behind, and it keeps failed jobs for ever.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Job, Queue } from 'bullmq';
import { isTempName } from '../delivery/durable.js';
import type { JobFolders } from '../delivery/blob-store.js';
import { retentionEndsAt, type JobRetention } from '../delivery/job-life.js';
import type { DistributedJob } from './job-data.js';
import type { QueueIndex } from './queue-index.js';
import { shownRecord } from './queue-jobs.js';

/** Jobs read per batch; BullMQ keeps finished jobs ordered by when they finished, so a pass stops at a young one. */
const BATCH = 100;

export async function purgeFinishedJobs(
  queue: Queue<DistributedJob>,
  folders: JobFolders,
  index: QueueIndex,
  retention: JobRetention,
  now = Date.now(),
): Promise<number> {
  let purged = 0;
  for (const type of ['completed', 'failed'] as const) {
    for (let start = 0; ;) {
      const batch = (await queue.getJobs(type, start, start + BATCH - 1, true)) as Job<DistributedJob>[];
      let young = false;
      for (const bjob of batch) {
        if (!bjob?.data?.id) {
          start += 1;
          continue;
        }
        const record = shownRecord(bjob, type === 'failed');
        const ends = retentionEndsAt(record, retention);
        if (ends === undefined || ends >= now) {
          young = true;
          break;
        }
        // remove() refuses a job a worker holds (an operator's retry just took it): the next pass sees it again.
        if ((await queue.remove(record.id)) !== 1) {
          start += 1;
          continue;
        }
        await folders.remove(record.id);
        await index.forget(record);
        purged += 1;
      }
      if (young || batch.length < BATCH) break;
    }
  }
  return purged;
}

/** A temp file older than this was left by a process that died (a picture is drawn within a minute). */
const STALE_TEMP_MS = 3_600_000;

/**
 * Removes temp files a dead process left in BLOB_DIR/jobs (waveforms.ts: a hard link to a delivered part, a
 * picture being drawn). Only old ones: the folder is shared, and another process's are in use.
 */
export async function sweepStaleTemps(root: string, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await readdir(root)) {
    if (!isTempName(name)) continue;
    const file = path.join(root, name);
    const info = await stat(file).catch(() => undefined);
    // ctime too: a hard link keeps its part's (older) mtime, but linking it changed the ctime.
    if (!info || Math.max(info.mtimeMs, info.ctimeMs) + STALE_TEMP_MS >= now) continue;
    await rm(file, { force: true });
    removed += 1;
  }
  return removed;
}
