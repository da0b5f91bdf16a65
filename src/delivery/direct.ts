/**
 * DELIVERY=sync: the same procedure as the spool (run-job.ts), over a job
 * kept in memory in the request's own folder (memory-store.ts): nothing
 * fsynced, nothing kept once the caller has its answer, no duplicate check,
 * no 202 (`Prefer: respond-async` is ignored). The in-request retry policy
 * applies; what Imagicle last answered (or 502/504 when it did not) is the
 * answer (http/answer.ts).
 */
import path from 'node:path';
import type { Deliver } from '../pipeline/ingest.js';
import { memoryJobLife, MemoryJobStore, memoryJob } from './memory-store.js';
import { runJob } from './run-job.js';
import {
  ingestResultOf,
  type AcceptRequest,
  type AcceptResult,
  type DeliverySettings,
  type UploadDelivery,
} from './service.js';

export class DirectDelivery implements UploadDelivery {
  constructor(
    /** One plain attempt: the policy below is applied by run-job.ts. */
    private readonly deliver: Deliver,
    readonly settings: DeliverySettings,
  ) {}

  /** Nothing is kept: the work folder's own disk bound applies (TMP_DIR, pipeline/disk.ts). */
  checkCapacity(): void {}

  async accept(r: AcceptRequest): Promise<AcceptResult> {
    const dir = path.dirname(r.audio.path);
    const job = memoryJob(
      dir,
      {
        mode: r.mode,
        requestId: r.requestId,
        owner: r.owner,
        metadata: r.metadata,
        stereoOptions: r.stereoOptions,
        callerAuthorization: r.callerAuthorization,
      },
      { attachment: r.audio, remoteAttachment: r.remoteAudio },
      r.requestId,
    );
    const run = await runJob(new MemoryJobStore(dir), this.deliver, job, {
      signal: r.signal,
      policy: this.settings.policy,
      prepare: r.prepare,
      log: r.log,
      life: memoryJobLife(r.log),
    });
    return { kind: 'answered', job, outcome: run.outcome.kind, result: ingestResultOf(job, run) };
  }
}
