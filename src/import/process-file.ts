/**
 * One imported file, from its state to its outcome: skip what an earlier run
 * delivered, recognise the same recording under another path, probe only
 * (dry run), or deliver it through the pipeline with the state as the part
 * journal. Shared by `import` and `watch`.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { toGatewayError } from '../errors.js';
import { dedupKey } from '../delivery/dedup.js';
import { formatIsoDuration } from '../imagicle/duration.js';
import {
  deliverRecording,
  type DeliverRecordingDeps,
  type Owner,
  type PartJournal,
  type PriorTries,
} from '../delivery/deliver-recording.js';
import { inspectAudio } from '../pipeline/prepare.js';
import type { AudioInput } from '../pipeline/prepared.js';
import type { FitDeps } from '../pipeline/fit.js';
import { mergedMix, targetForMix } from '../pipeline/stereo-output.js';
import { bytesPerSecond, type Plan, type Target } from '../media/plan.js';
import { extensionOf } from '../media/formats.js';
import type { ImportItem } from './sources.js';
import { fileReport, type FileReport, type FileStatus } from './file-report.js';
import type { StateStore } from './state.js';
import { openRegularFile, sha256Opened, UnsafeFileError, type OpenedFile } from '../safe-fs.js';

export interface ProcessContext {
  state: StateStore;
  deps: DeliverRecordingDeps;
  owner: Owner;
  tmpDir: string;
  dryRun: boolean;
  retryFailed: boolean;
  signal: AbortSignal;
  /** The tries of a file this run already took and left waiting (run.ts), by path. */
  tries?: ReadonlyMap<string, PriorTries> | undefined;
}

const blank = fileReport;

/** Imagicle's 201 body is opaque: a JSON string is the id, an object's `id` if it has one. */
function recordingId(answer: string | null | undefined): string {
  if (!answer) return '';
  try {
    const json: unknown = JSON.parse(answer);
    if (typeof json === 'string') return json;
    if (json && typeof json === 'object' && 'id' in json) return String((json as { id: unknown }).id);
    return answer;
  } catch {
    return answer;
  }
}

/** The recording as the pipeline reads it: the opened file's own path (safe-fs.ts), named after the original. */
const audioInput = (file: OpenedFile): AudioInput => ({
  path: file.path,
  originalName: path.basename(file.source),
  extension: extensionOf(file.source),
  // The recorder's file: a header repair works on a copy.
  readOnly: true,
});

/**
 * Opens the file (and its second leg) once, without following a link, regular files only (safe-fs.ts); everything
 * after reads the opened files, never the recorder's names again.
 */
export async function processFile(item: ImportItem, ctx: ProcessContext): Promise<FileReport> {
  if (item.refused) return blank(item, 'failed', { error: item.refused, permanent: true });
  const opened: OpenedFile[] = [];
  try {
    for (const leg of [item.path, ...(item.remotePath ? [item.remotePath] : [])]) {
      opened.push(await openRegularFile(leg, item.within));
    }
  } catch (error) {
    await Promise.all(opened.map((o) => o.close()));
    if (error instanceof UnsafeFileError) return blank(item, 'failed', { error: error.message, permanent: true });
    return blank(item, 'failed', {
      error: `cannot read the file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    });
  }
  try {
    return await processOpened(item, opened[0]!, opened[1], ctx);
  } finally {
    await Promise.all(opened.map((o) => o.close()));
  }
}

async function processOpened(
  item: ImportItem,
  audio: OpenedFile,
  remote: OpenedFile | undefined,
  ctx: ProcessContext,
): Promise<FileReport> {
  const { state } = ctx;
  const size = audio.stat.size;
  const mtimeMs = Math.trunc(audio.stat.mtimeMs);
  const row = state.get(item.path);
  const sameKey = row !== undefined && row.size === size && row.mtimeMs === mtimeMs;
  const earlier = (status: FileStatus): FileReport =>
    blank(item, status, {
      ids: row!.ids,
      parts: row!.parts ?? undefined,
      duration: row!.duration ?? undefined,
      decision: row!.decision ?? undefined,
      error: row!.error ?? undefined,
    });
  if (sameKey && row.status === 'delivered') return earlier('already-delivered');
  if (sameKey && row.status === 'failed' && !ctx.retryFailed && !ctx.dryRun) return earlier('failed');
  if (!item.metadata.ok) return blank(item, 'invalid', { error: item.metadata.reason });
  const metadata = item.metadata.metadata;

  let hashes: string[];
  try {
    hashes = [await sha256Opened(audio, ctx.signal), ...(remote ? [await sha256Opened(remote, ctx.signal)] : [])];
  } catch (error) {
    if (ctx.signal.aborted) return blank(item, 'interrupted', { error: 'interrupted' });
    throw error;
  }
  const key = dedupKey(ctx.owner.id, metadata, hashes);
  const sameContent = row !== undefined && row.dedupKey === key;
  if (row && !sameKey && sameContent) {
    // Touched or copied back: the same recording, still keyed by its path.
    state.rekey(item.path, size, mtimeMs);
    if (row.status === 'delivered') return earlier('already-delivered');
    if (row.status === 'failed' && !ctx.retryFailed && !ctx.dryRun) return earlier('failed');
  }
  const twin = state.deliveredDuplicate(key, item.path);
  if (twin)
    return blank(item, 'duplicate', {
      ids: twin.ids,
      parts: twin.parts ?? undefined,
      error: `the same recording was delivered from ${twin.path}`,
    });

  if (ctx.dryRun) return dryRun(item, audio, remote, ctx);

  state.begin(item.path, size, mtimeMs, key, sameContent);
  await mkdir(ctx.tmpDir, { recursive: true });
  const workDir = await mkdtemp(path.join(ctx.tmpDir, 'import-'));
  const journal: PartJournal = {
    isDelivered(index, count) {
      const part = state.partState(item.path, index);
      if (part?.state !== 'sent') return false;
      if (part.count !== count) {
        throw new Error(
          `part ${index} was delivered as one of ${part.count} parts, but the file now renders to ${count}: not sent again`,
        );
      }
      return true;
    },
    uncertainSince(index, count) {
      // Cut short by a crash ("sending") or unanswered ("ambiguous"): Imagicle is asked first (RECONCILE=auto).
      const part = state.partState(item.path, index);
      if (part?.count !== count || (part.state !== 'sending' && part.state !== 'ambiguous')) return undefined;
      // The row as this run found it: its last change was that attempt's start (or later, which only waits longer).
      return row?.updatedAt;
    },
    beforeAttempt(part) {
      state.markSending(item.path, part.index, part.count);
    },
    afterAttempt(part, verdict, result) {
      const next = verdict === 'success' ? 'sent' : verdict === 'ambiguous' ? 'ambiguous' : 'pending';
      state.markPart(item.path, part.index, next, result.response?.body);
    },
    found(part, answer) {
      state.markPart(item.path, part.index, 'sent', answer);
    },
  };
  try {
    const result = await deliverRecording(
      {
        metadata,
        audio: audioInput(audio),
        remoteAudio: remote ? audioInput(remote) : undefined,
        stereoOptions: item.stereoOptions,
      },
      ctx.owner,
      workDir,
      ctx.deps,
      journal,
      ctx.signal,
      ctx.tries?.get(item.path),
    );
    const { prepared, fitted, outcome, possibleDuplicates, tries } = result;
    const details = {
      parts: fitted?.parts.length,
      duration: prepared?.isoDuration,
      decision: !prepared
        ? undefined
        : fitted === undefined || fitted.oversize.action === 'none'
          ? prepared.plan.action
          : `${prepared.plan.action}+${fitted.oversize.action}`,
      ids: state.sentParts(item.path).map((p) => recordingId(p.answer)),
    };
    const common = { ...details, durationSeconds: prepared?.durationSeconds ?? 0, possibleDuplicates, tries };
    if (outcome.kind === 'delivered') {
      state.finish(item.path, 'delivered', details);
      return blank(item, 'delivered', common);
    }
    const error =
      outcome.part === undefined ? outcome.message : `part ${outcome.part}/${details.parts}: ${outcome.message}`;
    if (outcome.kind === 'retry') {
      // Transient: the file stays pending (a plain rerun takes it), never failed.
      state.wait(item.path, { ...details, error });
      const retry = { delayMs: outcome.delayMs, backpressure: outcome.backpressure };
      return blank(item, 'waiting', { ...common, error, retry });
    }
    state.finish(item.path, 'failed', { ...details, error });
    // Held (Imagicle may hold it and cannot be asked) is failed too, but not the recording's fault: watch retries it.
    return blank(item, 'failed', { ...common, error, permanent: !outcome.held });
  } catch (thrown) {
    const gw = toGatewayError(thrown);
    if (gw.code === 'ABORTED' || ctx.signal.aborted) return blank(item, 'interrupted', { error: 'interrupted' });
    // Staging the file for the run failed (the job life settles everything after that).
    const error = thrown instanceof Error ? thrown.message : gw.message;
    state.finish(item.path, 'failed', { error });
    return blank(item, 'failed', { error, permanent: gw.status < 500 });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Room for a converted file's header. */
const HEADER_BYTES = 1024;

/** What the recording would weigh once converted: from the declared length, or the file itself when kept. */
function expectedBytes(plan: Plan, legs: readonly OpenedFile[], seconds: number, deps: FitDeps): number {
  const encoded = (target: Target): number => Math.ceil(bytesPerSecond(target) * seconds) + HEADER_BYTES;
  if (legs.length > 1) return encoded(targetForMix(deps, mergedMix(deps)));
  if (plan.action === 'transcode') return encoded(plan.target);
  return legs[0]!.stat.size;
}

/** Probes and plans without sending: what would go, or why it cannot. */
async function dryRun(
  item: ImportItem,
  audio: OpenedFile,
  remote: OpenedFile | undefined,
  ctx: ProcessContext,
): Promise<FileReport> {
  try {
    const legs = [audio, ...(remote ? [remote] : [])];
    const inspected = [];
    for (const leg of legs) inspected.push(await inspectAudio(audioInput(leg), ctx.deps, ctx.signal));
    const first = inspected[0]!;
    const seconds = Math.max(...inspected.map((i) => i.probed.durationSeconds ?? 0));
    const bytes = expectedBytes(first.plan, legs, seconds, ctx.deps);
    const limit = ctx.deps.maxPartBytes;
    if (bytes > limit && ctx.deps.oversize.policy === 'reject') {
      const error =
        `The converted recording would be about ${bytes} bytes, more than the limit of ${limit} bytes ` +
        'per file (OVERSIZE=reject)';
      return blank(item, 'failed', { error, permanent: true });
    }
    return blank(item, 'would-send', {
      duration: seconds > 0 ? formatIsoDuration(seconds) : undefined,
      durationSeconds: seconds,
      decision: legs.length > 1 ? 'merge-legs' : first.plan.action,
      // Split at silences before the limit: the count from the declared length (unknown after a re-encode).
      parts: bytes <= limit ? 1 : ctx.deps.oversize.policy === 'split' ? Math.ceil(bytes / limit) : undefined,
    });
  } catch (thrown) {
    const gw = toGatewayError(thrown);
    return blank(item, 'failed', { error: gw.message, permanent: true });
  }
}
