/**
 * Output is bounded before the work starts. From the probed duration, the
 * target format and any offsets, a job knows how many bytes it will write;
 * before decoding it checks them against MAX_EXPANSION (output bytes per
 * input byte: a 172 KB float WAV at 1 Hz declares 12 h and would become
 * 688 MB) and reserves them on the disk it writes to (disk.ts).
 * MAX_DURATION_SECONDS, offsets included, is checked by the callers.
 */
import { tooLarge } from '../errors.js';
import { bytesPerSecond, type Target } from '../media/plan.js';
import type { DiskBudget } from './disk.js';

export interface OutputBounds {
  /** MAX_EXPANSION. */
  maxExpansion: number;
  /** Where this job's output goes (the spool, or TMP_DIR); none: no reservation (CLI, unit tests). */
  budget?: DiskBudget | undefined;
  /** Outputs above this are split into parts: while splitting, the parts and the whole exist together. */
  maxPartBytes?: number | undefined;
}

/** Header and container slack on top of the audio bytes. */
const HEADER_SLACK_BYTES = 64 * 1024;

/** Bytes a transcode to `target` writes for `seconds` of audio. */
export function expectedOutputBytes(target: Target, seconds: number): number {
  return Math.ceil(bytesPerSecond(target) * Math.max(0, seconds)) + HEADER_SLACK_BYTES;
}

export interface ExpectedWork {
  /** What the upload weighs (both legs together). */
  inputBytes: number;
  /** The output the job delivers, from the declared length: what MAX_EXPANSION judges. */
  outputBytes: number;
  /** The most ffmpeg may write (its -fs cap, for headers that lie): what is reserved; outputBytes when unset. */
  worstCaseBytes?: number;
  /** Intermediate files written before the output (decoded legs), deleted at the end. */
  scratchBytes?: number;
  /** Named in messages: "the converted audio", "the merged call". */
  what: string;
}

/** Refuses what expands too much (413 reason 2), then reserves the disk the work needs (413 or 507). */
export async function boundOutput(bounds: OutputBounds | undefined, work: ExpectedWork): Promise<void> {
  if (!bounds) return;
  const ratio = work.outputBytes / Math.max(1, work.inputBytes);
  if (ratio > bounds.maxExpansion) {
    throw tooLarge(
      `${capitalise(work.what)} would be about ${mb(work.outputBytes)} from an upload of ${mb(work.inputBytes)} ` +
        `(${Math.round(ratio)} times its size); ` +
        `the gateway accepts at most ${bounds.maxExpansion} times (MAX_EXPANSION)`,
    );
  }
  const output = Math.max(work.outputBytes, work.worstCaseBytes ?? 0);
  const splitCopy = bounds.maxPartBytes !== undefined && output > bounds.maxPartBytes ? output : 0;
  await bounds.budget?.reserve(output + splitCopy + (work.scratchBytes ?? 0), work.what);
}

const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const mb = (bytes: number): string =>
  bytes >= 1e6 ? `${(bytes / 1e6).toFixed(0)} MB` : `${(bytes / 1e3).toFixed(0)} KB`;
