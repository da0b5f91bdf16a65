/** What became of one file of a file door (import, watch): the report line, the CSV row, the JSON line. */
import type { PriorTries } from '../delivery/deliver-recording.js';
import type { ImportItem } from './sources.js';

export type FileStatus =
  | 'delivered'
  | 'already-delivered'
  | 'duplicate'
  | 'failed'
  | 'invalid'
  | 'would-send'
  | 'interrupted'
  /** Imagicle is down or busy (a transient cause): kept pending in the state, tried again (run.ts) or by a rerun. */
  | 'waiting'
  /** A job of the gateway's store holds it (the watched folder under serve: job-door.ts); its outcome comes later. */
  | 'accepted';

export interface FileReport {
  path: string;
  status: FileStatus;
  ids: string[];
  parts: number | undefined;
  /** ISO 8601, as sent (the whole recording). */
  duration: string | undefined;
  durationSeconds: number;
  decision: string | undefined;
  error: string | undefined;
  /** Imagicle refused it (4xx) rather than an outage: the watcher moves it to failed/. */
  permanent: boolean;
  /** Re-sent parts whose earlier attempt may have reached Imagicle (the crash window). */
  possibleDuplicates: number;
  /** The gateway's job that holds the file (job-door.ts). */
  jobId?: string | undefined;
  /** `waiting`: when the job life says to try again, and whether Imagicle asked every sender to pause (429/503). */
  retry?: { delayMs: number; backpressure: boolean } | undefined;
  /** What this run used up for the file so far (the backoff grows with it; a rerun starts afresh). */
  tries?: PriorTries | undefined;
}

/** A report with nothing known yet but the file and its status. */
export const fileReport = (item: ImportItem, status: FileStatus, extra: Partial<FileReport> = {}): FileReport => ({
  path: item.display,
  status,
  ids: [],
  parts: undefined,
  duration: undefined,
  durationSeconds: 0,
  decision: undefined,
  error: undefined,
  permanent: false,
  possibleDuplicates: 0,
  ...extra,
});
