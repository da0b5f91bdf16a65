/**
 * One imported file through a running gateway (`import --gateway`): skip
 * what an earlier run saw delivered, follow the job an earlier run handed it
 * to, or upload it (gateway-door.ts) and follow its job until it ends. The
 * job id is written to the state as soon as the gateway names it, so that a
 * rerun after a kill follows that job instead of uploading again (an upload
 * whose answer was lost is recognised by the gateway's duplicate key).
 */
import { lstat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayDoor } from './gateway-door.js';
import type { ProcessContext } from './process-file.js';
import { fileReport, type FileReport } from './file-report.js';
import type { ImportItem } from './sources.js';

/** Between two reads of an open job. */
const POLL_MS = 1000;

const earlierReport = (item: ImportItem, status: FileReport['status'], error: string | null): FileReport =>
  fileReport(item, status, { error: error ?? undefined, permanent: status === 'failed' });

export async function processViaGateway(
  item: ImportItem,
  ctx: Pick<ProcessContext, 'state' | 'retryFailed' | 'signal'>,
  door: GatewayDoor,
): Promise<FileReport> {
  const { state } = ctx;
  const info = await lstat(item.path).catch(() => undefined);
  const row = state.get(item.path);
  const sameKey =
    info !== undefined && row !== undefined && row.size === info.size && row.mtimeMs === Math.trunc(info.mtimeMs);
  if (sameKey && row.status === 'delivered') {
    return { ...earlierReport(item, 'already-delivered', null), ids: row.ids, parts: row.parts ?? undefined };
  }
  if (sameKey && row.status === 'failed' && !ctx.retryFailed) return earlierReport(item, 'failed', row.error);

  let jobId = sameKey ? (row.jobId ?? undefined) : undefined;
  if (jobId !== undefined && row?.status === 'failed') {
    // --retry-failed: the gateway's job is retried (a new upload would only be its duplicate).
    const retried = await door.retry(jobId).then(
      () => true,
      () => false,
    );
    if (!retried) jobId = undefined;
    else state.track(item.path, row.size, row.mtimeMs, jobId);
  }
  if (jobId === undefined) {
    if (info) state.track(item.path, info.size, Math.trunc(info.mtimeMs), null);
    const taken = await door.take(item, ctx.signal);
    if (taken.jobId && info) state.track(item.path, info.size, Math.trunc(info.mtimeMs), taken.jobId);
    if (taken.status !== 'accepted') return settled(item, taken, ctx);
    jobId = taken.jobId!;
  }
  for (;;) {
    if (ctx.signal.aborted) return earlierReport(item, 'interrupted', 'interrupted');
    // The gateway unreachable for a moment is not the job's outcome: read again.
    const ended = await door.outcome(item, jobId).catch(() => undefined);
    if (ended) return settled(item, ended, ctx);
    await sleep(POLL_MS, undefined, { signal: ctx.signal }).catch(() => undefined);
  }
}

/** The file's state follows its job's end (or the upload's refusal). */
function settled(item: ImportItem, report: FileReport, ctx: Pick<ProcessContext, 'state'>): FileReport {
  const details = { parts: report.parts, ids: report.ids, duration: report.duration, decision: report.decision };
  if (ctx.state.get(item.path) === undefined) return report;
  if (report.status === 'delivered') ctx.state.finish(item.path, 'delivered', details);
  else if (report.status === 'failed') ctx.state.finish(item.path, 'failed', { ...details, error: report.error });
  else if (report.status === 'waiting') ctx.state.wait(item.path, { error: report.error ?? 'waiting' });
  return report;
}
