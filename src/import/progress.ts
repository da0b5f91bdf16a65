/**
 * Progress of a run: on a terminal a live bar (files done/total, converted,
 * skipped, invalid, failed, audio hours delivered, files/s, audio hours per
 * hour, ETA) with each failed or invalid file printed above it as it
 * happens; otherwise a plain line every few seconds. Both read the same
 * counters.
 *
 * Rates and the ETA count only the files that were worked on: a resume
 * skips thousands of already-delivered files in a second, and counting them
 * would promise an ETA of seconds for hours of work.
 */
import cliProgress from 'cli-progress';
import type { FileReport } from './file-report.js';

export interface Counters {
  total: number;
  done: number;
  delivered: number;
  /** Nothing to do: already delivered, or the same recording as another file. */
  skipped: number;
  /** The metadata was incomplete or wrong: nothing was tried. */
  invalid: number;
  /** Tried and not delivered (refused audio, Imagicle's refusal, an outage). */
  failed: number;
  /** Dry run: would be sent. */
  wouldSend: number;
  /** Left waiting for Imagicle (a transient cause) at the end of the run: pending in the state, for a rerun. */
  waited: number;
  /** Waiting for Imagicle right now, to be taken again in this run. */
  waiting: number;
  /** Why the last file had to wait (Imagicle's answer or the connection error). */
  lastUpstreamError: string | undefined;
  audioSeconds: number;
  possibleDuplicates: number;
  startedAt: number;
}

export function newCounters(total: number, now = Date.now()): Counters {
  return {
    total,
    done: 0,
    delivered: 0,
    skipped: 0,
    invalid: 0,
    failed: 0,
    wouldSend: 0,
    waited: 0,
    waiting: 0,
    lastUpstreamError: undefined,
    audioSeconds: 0,
    possibleDuplicates: 0,
    startedAt: now,
  };
}

export function count(c: Counters, r: FileReport): void {
  c.done += 1;
  c.possibleDuplicates += r.possibleDuplicates;
  switch (r.status) {
    case 'delivered':
      c.delivered += 1;
      c.audioSeconds += r.durationSeconds;
      break;
    case 'would-send':
      c.wouldSend += 1;
      c.audioSeconds += r.durationSeconds;
      break;
    case 'invalid':
      c.invalid += 1;
      break;
    case 'failed':
      c.failed += 1;
      break;
    case 'waiting':
      c.waited += 1;
      break;
    default:
      c.skipped += 1;
  }
}

/** Files that cost work (not skipped, not refused for their metadata before any work). */
const worked = (c: Counters): number => c.done - c.skipped - c.invalid - c.waited;

export function rates(
  c: Counters,
  now = Date.now(),
): { filesPerSecond: number; audioHoursPerHour: number; etaSeconds: number | undefined } {
  const elapsed = Math.max(0.001, (now - c.startedAt) / 1000);
  const filesPerSecond = worked(c) / elapsed;
  const left = c.total - c.done;
  return {
    filesPerSecond,
    audioHoursPerHour: c.audioSeconds / elapsed,
    etaSeconds: left === 0 ? 0 : filesPerSecond > 0 ? left / filesPerSecond : undefined,
  };
}

const hours = (seconds: number): string => (seconds / 3600).toFixed(2);

/** "45 s", "12 min 05 s", "3 h 07 min"; "unknown" before the first converted file. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return 'unknown';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** "; 3 waiting for Imagicle (last: Imagicle answered 503)" while files wait, else nothing. */
function waitingNote(c: Counters): string {
  const n = c.waiting + c.waited;
  if (n === 0) return '';
  return `; ${n} waiting for Imagicle${c.lastUpstreamError ? ` (last: ${c.lastUpstreamError})` : ''}`;
}

export function progressLine(c: Counters, now = Date.now()): string {
  const r = rates(c, now);
  return (
    `${c.done}/${c.total} files: ${c.delivered + c.wouldSend} converted, ${c.skipped} skipped, ` +
    `${c.invalid} invalid, ${c.failed} failed${waitingNote(c)}; ${hours(c.audioSeconds)} h audio; ` +
    `${r.filesPerSecond.toFixed(2)} files/s, ${r.audioHoursPerHour.toFixed(1)} audio h/h; ETA ${formatEta(r.etaSeconds)}`
  );
}

/** The line printed above the bar (or in the log) for a file that did not go. */
export function problemLine(r: FileReport): string {
  return `${r.status}: ${r.path}: ${r.error ?? ''}`;
}

export interface Progress {
  update(): void;
  /** Prints a line above the bar (on a terminal) or as is. */
  log(line: string): void;
  stop(): void;
}

/** A bar on a TTY, a line every `intervalMs` elsewhere; nothing at all when `quiet`. */
export function startProgress(
  c: Counters,
  stream: NodeJS.WriteStream,
  options: { intervalMs: number; quiet?: boolean },
): Progress {
  if (options.quiet) return { update: () => undefined, log: () => undefined, stop: () => undefined };
  if (stream.isTTY) {
    // A MultiBar of one: only it can print lines above the bar without tearing it.
    const bars = new cliProgress.MultiBar(
      {
        stream,
        format:
          '{bar} {value}/{total} files | {converted} converted | {skipped} skipped | {invalid} invalid | {failed} failed{waiting} | {hours} h audio | {fps} files/s | ETA {eta}',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = (): Record<string, string | number> => {
      const r = rates(c);
      return {
        converted: c.delivered + c.wouldSend,
        skipped: c.skipped,
        invalid: c.invalid,
        failed: c.failed,
        waiting: waitingNote(c).replace(/^; /, ' | '),
        hours: hours(c.audioSeconds),
        fps: r.filesPerSecond.toFixed(2),
        eta: formatEta(r.etaSeconds),
      };
    };
    const bar = bars.create(c.total, 0, payload());
    return {
      update: () => bar.update(c.done, payload()),
      log: (line) => bars.log(`${line}\n`),
      stop: () => bars.stop(),
    };
  }
  const timer = setInterval(() => stream.write(`${progressLine(c)}\n`), options.intervalMs);
  timer.unref();
  return { update: () => undefined, log: (line) => stream.write(`${line}\n`), stop: () => clearInterval(timer) };
}
