/**
 * The use case behind the file doors (`import`, `watch`): a recording already
 * on disk (one file or two legs), its metadata and options, for an owner →
 * probe → plan → render → split → deliver each part with the retry policy.
 *
 * Each part's attempt is reported to a journal before it starts and after it
 * ends, and parts the journal already holds as delivered are skipped: that is
 * what makes a rerun after a crash deliver every part once (see
 * docs/import.md, "Exactly once"). The source files are never modified: they
 * are staged (copied) into the work folder first, since a WAV header repair
 * rewrites its input in place.
 */
import { copyFile, constants } from 'node:fs/promises';
import path from 'node:path';
import type { GatewayError } from '../errors.js';
import type { RecordingMetadata } from '../imagicle/schema.js';
import type { UpstreamResponse } from '../imagicle/client.js';
import { deliverWithRetry } from '../delivery/retrying-deliver.js';
import type { RetryPolicy, Verdict } from '../delivery/retry.js';
import type { DeliverablePart, FittedAudio } from './fit.js';
import { metadataForPart, prepareForDelivery, type Deliver, type IngestDeps } from './ingest.js';
import type { AudioInput, PreparedAudio } from './prepare.js';
import type { StereoRequestOptions } from './stereo.js';

/** Who a recording is delivered for: today the CLI/watcher itself, with no forwarded Authorization. */
export interface Owner {
  id: string;
  authorization?: string | undefined;
}

export interface FileRecording {
  metadata: RecordingMetadata;
  audio: AudioInput;
  remoteAudio?: AudioInput | undefined;
  stereoOptions?: StereoRequestOptions | undefined;
}

export interface PartJournal {
  /** Parts (1-based index) known to be delivered by an earlier run. */
  isDelivered(index: number, count: number): boolean;
  /** Written (durably) before an attempt starts: a crash after this is the documented window. */
  beforeAttempt(part: DeliverablePart, metadata: Record<string, unknown>): void;
  afterAttempt(part: DeliverablePart, verdict: Verdict, result: { response?: UpstreamResponse; error?: GatewayError }): void;
}

export interface DeliverRecordingDeps extends Omit<IngestDeps, 'deliver'> {
  /** One plain attempt (no retries: the policy below is applied here). */
  deliver: Deliver;
  policy: RetryPolicy;
}

export type RecordingOutcome =
  | { kind: 'delivered' }
  /** Imagicle refused it (400, 403, 409, …): retrying cannot help. */
  | { kind: 'permanent'; part: number; status: number | undefined; message: string }
  /** Outage or 5xx that the policy did not overcome in this run. */
  | { kind: 'retry-later'; part: number; status: number | undefined; message: string };

export interface RecordingResult {
  prepared: PreparedAudio;
  fitted: FittedAudio;
  outcome: RecordingOutcome;
  /** Imagicle's answer body per part delivered in this run. */
  answers: Map<number, unknown>;
}

async function stage(input: AudioInput, workDir: string, name: string): Promise<AudioInput> {
  const staged = path.join(workDir, `${name}.${input.extension || 'bin'}`);
  // A reflink where the file system has them, else a copy.
  await copyFile(input.path, staged, constants.COPYFILE_FICLONE);
  return { ...input, path: staged };
}

/** Imagicle's message for a refusal: its `{reason, message}` body when it sent one. */
export function answerMessage(response: UpstreamResponse | undefined, error: GatewayError | undefined): string {
  if (response) {
    const json = response.json as { message?: unknown } | undefined;
    const text = typeof json?.message === 'string' ? json.message : response.body.slice(0, 300);
    return `Imagicle answered ${response.status}${text ? `: ${text}` : ''}`;
  }
  return error?.message ?? 'no answer';
}

export async function deliverRecording(
  recording: FileRecording,
  owner: Owner,
  workDir: string,
  deps: DeliverRecordingDeps,
  journal: PartJournal,
  signal?: AbortSignal,
): Promise<RecordingResult> {
  const audio = await stage(recording.audio, workDir, 'attachment');
  const remoteAudio = recording.remoteAudio ? await stage(recording.remoteAudio, workDir, 'remote') : undefined;
  const { prepared, fitted } = await prepareForDelivery(
    { metadata: recording.metadata, audio, remoteAudio, stereoOptions: recording.stereoOptions, workDir, signal },
    deps,
  );
  const answers = new Map<number, unknown>();
  for (const part of fitted.parts) {
    if (journal.isDelivered(part.index, part.count)) continue;
    const metadata = metadataForPart(recording.metadata, part);
    const outcome = await deliverWithRetry(
      deps.deliver,
      {
        metadata,
        audioPath: part.path,
        audioBytes: part.bytes,
        contentType: fitted.prepared.contentType,
        filename: part.filename,
        callerAuthorization: owner.authorization,
        signal,
      },
      deps.policy,
      {
        beforeAttempt: () => journal.beforeAttempt(part, metadata),
        afterAttempt: (_attempt, verdict, result) => journal.afterAttempt(part, verdict, result),
      },
    );
    if (outcome.verdict === 'success') {
      answers.set(part.index, outcome.response?.json ?? outcome.response?.body);
      continue;
    }
    const failure = { part: part.index, status: outcome.response?.status, message: answerMessage(outcome.response, outcome.error) };
    return { prepared, fitted, answers, outcome: { kind: outcome.verdict === 'permanent' ? 'permanent' : 'retry-later', ...failure } };
  }
  return { prepared, fitted, answers, outcome: { kind: 'delivered' } };
}
