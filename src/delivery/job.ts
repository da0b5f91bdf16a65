/**
 * What a job is, whatever store holds it (the spool's journal, memory, a
 * BullMQ job): its state, inputs, parts, answers and errors.
 */
import type { RecordingMetadata } from '../imagicle/schema.js';
import type { SourceReference } from '../source-reference.js';
import type { StereoRequestOptions } from '../pipeline/stereo-policy.js';
import type { JobEvent } from './job-events.js';
import type { AttemptRecord, JobReport } from './job-report.js';

export const JOB_STATES = ['received', 'ready', 'delivering', 'delivered', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];
type PartState = 'pending' | 'delivering' | 'delivered';
export type JobMode = 'drop-in' | 'native';
/** How the recording reached the gateway: an upload, the import command, or the watched folder. */
export const JOB_DOORS = ['http', 'import', 'watch'] as const;
export type JobDoor = (typeof JOB_DOORS)[number];

export interface SpooledInput {
  /** File name inside the job folder ('' for a recording referenced in place: `source`). */
  file: string;
  originalName: string | undefined;
  extension: string;
  bytes: number;
  /** Recorded while the file is not fsynced (JobRecord.inputsSynced false): checked when the spool opens. */
  sha256?: string | undefined;
  /** A file of a watched folder, read where it is (never copied, never pruned): source-reference.ts. */
  source?: SourceReference | undefined;
}

export interface StoredAnswer {
  status: number;
  contentType: string | undefined;
  body: string;
  json: unknown;
}

export interface SpooledPart {
  index: number;
  count: number;
  /** Path inside the job folder; the file is deleted once Imagicle answered 2xx. */
  file: string;
  bytes: number;
  samples: number;
  sampleRate: number;
  durationSeconds: number;
  isoDuration: string;
  startOffsetSeconds: number;
  filename: string;
  /** The metadata sent for this part (duration measured; start shifted and notes marked when split). */
  metadata: Record<string, unknown>;
  state: PartState;
  attempts: number;
  /** Imagicle's last answer for this part (when delivered: the new recording's id). */
  upstream: StoredAnswer | undefined;
  deliveredAt: string | undefined;
  /**
   * When the last attempt at this part began, if its outcome is unknown (whole body sent, no answer; a 500/502/504;
   * interrupted by a crash): Imagicle may hold it, so it is asked before the part is sent again (job-life.ts).
   */
  uncertainSince?: string | undefined;
  /**
   * Imagicle itself answered that attempt (a 500): its processing is over, so it can be asked at once. Unset: no
   * answer, or a 502/504 from whatever stands in front of it, which Imagicle may still be processing.
   */
  uncertainAnswered?: boolean | undefined;
  /**
   * Without an answer from Imagicle's reads, the part may be sent again: its attempt was cut short by a crash or a
   * lost lease (not answered ambiguously), or an operator asked for the retry.
   */
  uncertainInterrupted?: boolean | undefined;
  /** Imagicle was found to hold this part already (reconciliation): nothing was sent again. */
  reconciled?: boolean | undefined;
  /** Other recordings in Imagicle that match this part (duplicates made before reconciliation). */
  duplicateIds?: string[] | undefined;
}

export interface JobError {
  at: string;
  part: number | undefined;
  status: number | undefined;
  code: string | undefined;
  message: string;
  /** Imagicle's answer body, as it came (parsed when JSON). */
  body: unknown;
  /** The recording may have been imported (whole body sent, then no answer, or 500/502/504). */
  ambiguous: boolean;
}

export interface JobRecord {
  version: 1;
  id: string;
  mode: JobMode;
  /** Absent in journals from before doors: an upload. */
  door?: JobDoor | undefined;
  requestId: string;
  /** The caller asked for Prefer: respond-async. */
  async: boolean;
  /**
   * Who sent it (http/owner.ts): only this owner (and operators) can see it in the jobs API, and its
   * duplicates are recognised only among this owner's uploads. Absent in journals from before owners.
   */
  owner?: string | undefined;
  state: JobState;
  createdAt: string;
  updatedAt: string;
  /** After this the worker gives up (SPOOL_MAX_AGE from acceptance, or from a retry request). */
  expiresAt: string;
  metadata: RecordingMetadata;
  stereoOptions: StereoRequestOptions | undefined;
  inputs: { attachment: SpooledInput; remoteAttachment?: SpooledInput | undefined };
  /**
   * The caller's Authorization, kept only when the gateway has no Imagicle
   * credentials of its own (it must be forwarded later); never shown by the
   * jobs API; the journal is mode 0600.
   */
  callerAuthorization: string | undefined;
  dedupKey: string | undefined;
  audioSha256: string | undefined;
  contentType: string | undefined;
  decision: string | undefined;
  parts: SpooledPart[];
  /**
   * False while the inputs' data may not be on disk yet (moved in without an fsync: the caller has no answer
   * yet). Absent or true: fsynced. See docs/delivery.md, "What is fsynced, and when".
   */
  inputsSynced?: boolean | undefined;
  /** False while the parts were rendered but not fsynced: a run that finds them so renders them again. */
  partsSynced?: boolean | undefined;
  attempts: number;
  nextAttemptAt: string | undefined;
  lastError: JobError | undefined;
  /** Preparations (probe, convert) that failed in a way a retry might fix; bounded (worker.ts). */
  prepareFailures?: number | undefined;
  /** Attempts that may have created a recording nobody recorded: interrupted by a crash, or ambiguous and retried. */
  possibleDuplicates: number;
  deliveredAt: string | undefined;
  failedAt: string | undefined;
  /** Probe, decision, output and stereo analysis, once prepared (absent in journals written before it existed). */
  report?: JobReport | undefined;
  /** Every delivery attempt with Imagicle's answer, oldest first (bounded: job-report.ts). */
  history?: AttemptRecord[] | undefined;
  /** Failed because the outcome of an attempt is unknown and could not be resolved: waits for an operator. */
  held?: boolean | undefined;
  /** The outbox (job-events.ts): events recorded with the state change that caused them, newest last. */
  events?: JobEvent[] | undefined;
  /** The per-request webhook (issue 23), when the caller gave one and it was allowed. */
  callbackUrl?: string | undefined;
}

/** What the door and the intake decide about a new job; the job-life module fills in the rest. */
export type JobInit = Omit<
  JobRecord,
  | 'version'
  | 'id'
  | 'state'
  | 'createdAt'
  | 'updatedAt'
  | 'inputs'
  | 'parts'
  | 'attempts'
  | 'nextAttemptAt'
  | 'lastError'
  | 'possibleDuplicates'
  | 'deliveredAt'
  | 'failedAt'
>;
