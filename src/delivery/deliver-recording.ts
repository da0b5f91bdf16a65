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
 * docs/import.md, "Exactly once"). The source files are read where they are
 * (the door's descriptors) and never modified: the pipeline gets them
 * read-only, so a WAV header repair works on a copy, and only a compliant
 * file that passes through is copied into the work folder.
 */
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { RecordingMetadata } from '../imagicle/schema.js';
import type { UpstreamResponse } from '../imagicle/client.js';
import { createLogger, type Logger } from '../logger.js';
import type { JobLife, Settlement } from './job-life.js';
import type { JobRecord } from './job.js';
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
  /** When an earlier attempt at the part was cut short or unanswered (ISO 8601): Imagicle is asked before a re-send. */
  uncertainSince?(index: number, count: number): string | undefined;
  /** Imagicle was found to hold the part (reconciliation): its answer, as if it had just been delivered. */
  found?(part: PartIndex, answer: string | undefined): void;
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
  /**
   * The job life that settles each run (the gateway's failure policy, with its worker backoff); none: the memory
   * store's (default policy).
   */
  life?: JobLife | undefined;
}

/** What earlier runs of the same recording in this process used up (the backoff and the prepare-failure limit). */
export interface PriorTries {
  attempts: number;
  prepareFailures: number;
}

interface Failure {
  /** The part that was not delivered; undefined: the recording itself could not be prepared. */
  part: number | undefined;
  status: number | undefined;
  message: string;
}

/** What the job life decided after this run (JobLife.settle): the one failure policy of every door. */
type RecordingOutcome =
  | { kind: 'delivered' }
  /**
   * Failed for good: Imagicle refused it (400, 403, 409, …), the gateway refused the audio (4xx), the preparation
   * failed MAX_PREPARE_FAILURES times; or `held`: Imagicle may hold it and cannot be asked.
   */
  | ({ kind: 'failed'; held: boolean } & Failure)
  /** Transient (Imagicle down, 429, 503, connection errors, a busy or full disk): try again after `delayMs`. */
  | ({ kind: 'retry'; delayMs: number; backpressure: boolean } & Failure);

export interface RecordingResult {
  /** Undefined when the preparation itself failed. */
  prepared: PreparedAudio | undefined;
  fitted: FittedAudio | undefined;
  outcome: RecordingOutcome;
  /** Imagicle's answer body per part delivered in this run. */
  answers: Map<number, unknown>;
  /** Earlier runs' tries plus this run's: what the next run of the same recording starts from. */
  tries: PriorTries;
  /** Parts re-sent although an earlier attempt may have reached Imagicle (not asked, or it could not answer). */
  possibleDuplicates: number;
}

/** The doors report failed attempts themselves. */
const SILENT = createLogger('silent');

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
  prior: PriorTries = { attempts: 0, prepareFailures: 0 },
): Promise<RecordingResult> {
  const readOnly = (input: AudioInput): AudioInput => ({ ...input, readOnly: true });
  const remote = recording.remoteAudio;
  const held = { attachment: readOnly(recording.audio), remoteAttachment: remote ? readOnly(remote) : undefined };
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
    held,
    path.basename(workDir),
  );
  job.attempts = prior.attempts;
  job.prepareFailures = prior.prepareFailures || undefined;
  const store = new MemoryJobStore(workDir);
  const life = deps.life ?? memoryJobLife(log ?? SILENT);
  // The door's state (SQLite) journals each attempt beside the job's own record: a part sent but not yet
  // recorded as sent is the documented window (at most one duplicate per part, docs/import.md).
  let run;
  try {
    run = await runJob(store, deliver, job, {
      inputs: held,
      signal,
      policy,
      prepare,
      log: log ?? SILENT,
      life,
      reconcile,
      journal: {
        isDelivered: (part) => journal.isDelivered(part.index, part.count),
        beforeAttempt: (part) => journal.beforeAttempt(part, part.metadata),
        afterAttempt: (part, verdict, result) => journal.afterAttempt(part, verdict, result),
        uncertainSince: (part) => journal.uncertainSince?.(part.index, part.count),
        found: (part) => journal.found?.(part, part.upstream?.body),
      },
    });
  } catch (error) {
    if (signal?.aborted || (error instanceof GatewayError && error.code === 'ABORTED')) {
      // An attempt cut short before its whole body went out (recoverInterrupted left it certain) is not in
      // Imagicle: the journal says so, so that the next run does not ask Imagicle about it (or count it).
      for (const part of job.parts)
        if (part.state === 'pending' && part.attempts > 0 && part.uncertainSince === undefined)
          journal.afterAttempt(part, 'retry', {});
      throw error;
    }
    // The recording could not be prepared (or the run broke): the job life says whether that is final.
    const settled = await life.settle(store, job, { error }, log ?? SILENT);
    const failure = {
      part: undefined,
      status: job.lastError?.status,
      message: job.lastError?.message ?? String(error),
    };
    return {
      prepared: undefined,
      fitted: undefined,
      answers: new Map(),
      outcome: settledOutcome(settled, failure),
      tries: triesOf(job),
      possibleDuplicates: job.possibleDuplicates,
    };
  }
  const settled = await life.settle(store, job, { outcome: run.outcome }, log ?? SILENT);
  const { prepared, fitted } = run;
  const answers = new Map<number, unknown>();
  for (const [index, result] of run.live) {
    if (job.parts.find((p) => p.index === index)?.state !== 'delivered') continue;
    answers.set(index, result.response?.json ?? result.response?.body);
  }
  const failed = job.parts.find((p) => p.state !== 'delivered');
  const last = failed ? run.live.get(failed.index) : undefined;
  const failure = {
    part: failed?.index,
    status: last?.response?.status ?? job.lastError?.status,
    message: last ? answerMessage(last.response, last.error) : (job.lastError?.message ?? 'not delivered'),
  };
  return {
    prepared,
    fitted,
    answers,
    outcome: settledOutcome(settled, failure),
    tries: triesOf(job),
    possibleDuplicates: job.possibleDuplicates,
  };
}

const triesOf = (job: JobRecord): PriorTries => ({ attempts: job.attempts, prepareFailures: job.prepareFailures ?? 0 });

function settledOutcome(settled: Settlement, failure: Failure): RecordingOutcome {
  if (settled.kind === 'delivered') return { kind: 'delivered' };
  if (settled.kind === 'failed') return { kind: 'failed', held: settled.held, ...failure };
  return { kind: 'retry', delayMs: settled.delayMs, backpressure: settled.backpressure, ...failure };
}
