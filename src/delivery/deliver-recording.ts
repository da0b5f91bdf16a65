/**
 * The use case behind the file doors (`import`, `watch`): a recording already
 * on disk (one file or two legs), its metadata and options, for an owner →
 * probe → plan → render → split → deliver each part with the retry policy:
 * the same procedure as every upload (delivery/run-job.ts), over a job kept
 * in memory (memory-store.ts) in the import's work folder.
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
import { createLogger, type Logger } from '../logger.js';
import { memoryJobLife, MemoryJobStore, memoryJob } from './memory-store.js';
import type { RetryPolicy, Verdict } from './retry.js';
import { runJob } from './run-job.js';
import type { Reconciler } from './reconcile-port.js';
import type { DeliverablePart, FittedAudio } from '../pipeline/fit.js';
import type { Deliver, IngestDeps } from '../pipeline/ingest.js';
import type { AudioInput, PreparedAudio } from '../pipeline/prepared.js';
import type { StereoRequestOptions } from '../pipeline/stereo-policy.js';

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
  beforeAttempt(part: PartIndex, metadata: Record<string, unknown>): void;
  afterAttempt(part: PartIndex, verdict: Verdict, result: AttemptResult): void;
}

interface AttemptResult {
  response?: UpstreamResponse | undefined;
  error?: GatewayError | undefined;
}

/** Which part of how many. */
type PartIndex = Pick<DeliverablePart, 'index' | 'count'>;

export interface DeliverRecordingDeps extends Omit<IngestDeps, 'deliver'> {
  /** One plain attempt (no retries: the policy below is applied here). */
  deliver: Deliver;
  policy: RetryPolicy;
  /** Where a failed attempt is logged; none: not logged (the door reports it). */
  log?: Logger | undefined;
  /** RECONCILE=auto: Imagicle is asked before a part whose last attempt's outcome is unknown is sent again. */
  reconcile?: Reconciler | undefined;
}

type RecordingOutcome =
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

/** The doors report failed attempts themselves. */
const SILENT = createLogger('silent');

async function stage(input: AudioInput, workDir: string, name: string): Promise<AudioInput> {
  const staged = path.join(workDir, `${name}.${input.extension || 'bin'}`);
  // A reflink where the file system has them, else a copy.
  await copyFile(input.path, staged, constants.COPYFILE_FICLONE);
  return { ...input, path: staged };
}

/** Imagicle's message for a refusal: its `{reason, message}` body when it sent one. */
function answerMessage(response: UpstreamResponse | undefined, error: GatewayError | undefined): string {
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
  const { deliver, policy, log, reconcile, ...prepare } = deps;
  const job = memoryJob(
    workDir,
    {
      mode: 'drop-in',
      requestId: path.basename(workDir),
      owner: owner.id,
      metadata: recording.metadata,
      stereoOptions: recording.stereoOptions,
      callerAuthorization: owner.authorization,
    },
    { attachment: audio, remoteAttachment: remoteAudio },
    path.basename(workDir),
  );
  // The door's state (SQLite) journals each attempt beside the job's own record: a part sent but not yet
  // recorded as sent is the documented window (at most one duplicate per part, docs/import.md).
  const run = await runJob(new MemoryJobStore(workDir), deliver, job, {
    signal,
    policy,
    prepare,
    log: log ?? SILENT,
    life: memoryJobLife(log ?? SILENT),
    reconcile,
    journal: {
      isDelivered: (part) => journal.isDelivered(part.index, part.count),
      beforeAttempt: (part) => journal.beforeAttempt(part, part.metadata),
      afterAttempt: (part, verdict, result) => journal.afterAttempt(part, verdict, result),
    },
  });
  const { prepared, fitted } = run;
  if (!prepared || !fitted) throw new Error('a file door run renders its recording');
  const answers = new Map<number, unknown>();
  for (const [index, result] of run.live) {
    if (job.parts.find((p) => p.index === index)?.state !== 'delivered') continue;
    answers.set(index, result.response?.json ?? result.response?.body);
  }
  if (run.outcome.kind === 'delivered') return { prepared, fitted, answers, outcome: { kind: 'delivered' } };
  const failed = job.parts.find((p) => p.state !== 'delivered');
  const last = failed ? run.live.get(failed.index) : undefined;
  const message = answerMessage(last?.response, last?.error);
  const failure = { part: failed?.index ?? 0, status: last?.response?.status, message };
  const kind = run.outcome.kind === 'permanent' ? 'permanent' : 'retry-later';
  return { prepared, fitted, answers, outcome: { kind, ...failure } };
}
