/**
 * Progress of a run: on a terminal a live bar (files done/total, failures,
 * audio hours delivered, files/s, audio hours per hour, ETA); otherwise a
 * plain line every few seconds. Both read the same counters.
 */
import cliProgress from 'cli-progress';
import type { FileReport } from './process-file.js';

export interface Counters {
  total: number;
  done: number;
  delivered: number;
  skipped: number;
  failed: number;
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
    failed: 0,
    audioSeconds: 0,
    possibleDuplicates: 0,
    startedAt: now,
  };
}

export function count(c: Counters, r: FileReport): void {
  c.done += 1;
  c.possibleDuplicates += r.possibleDuplicates;
  if (r.status === 'delivered') {
    c.delivered += 1;
    c.audioSeconds += r.durationSeconds;
  } else if (r.status === 'failed' || r.status === 'invalid') c.failed += 1;
  else c.skipped += 1;
}

export function rates(
  c: Counters,
  now = Date.now(),
): { filesPerSecond: number; audioHoursPerHour: number; etaSeconds: number | undefined } {
  const elapsed = Math.max(0.001, (now - c.startedAt) / 1000);
  const filesPerSecond = c.done / elapsed;
  return {
    filesPerSecond,
    audioHoursPerHour: c.audioSeconds / elapsed,
    etaSeconds: filesPerSecond > 0 ? (c.total - c.done) / filesPerSecond : undefined,
  };
}

const hours = (seconds: number): string => (seconds / 3600).toFixed(2);
const eta = (seconds: number | undefined): string => {
  if (seconds === undefined) return '?';
  const s = Math.round(seconds);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};

export function progressLine(c: Counters, now = Date.now()): string {
  const r = rates(c, now);
  return (
    `${c.done}/${c.total} files, ${c.failed} failed, ${hours(c.audioSeconds)} h audio delivered, ` +
    `${r.filesPerSecond.toFixed(2)} files/s, ${r.audioHoursPerHour.toFixed(1)} audio h/h, ETA ${eta(r.etaSeconds)}`
  );
}

export interface Progress {
  update(): void;
  stop(): void;
}

/** A bar on a TTY, a line every `intervalMs` elsewhere; nothing at all when `quiet`. */
export function startProgress(
  c: Counters,
  stream: NodeJS.WriteStream,
  options: { intervalMs: number; quiet?: boolean },
): Progress {
  if (options.quiet) return { update: () => undefined, stop: () => undefined };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          '{bar} {value}/{total} files | {failed} failed | {hours} h audio | {fps} files/s | {hph} audio h/h | ETA {eta}',
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = (): Record<string, string | number> => {
      const r = rates(c);
      return {
        failed: c.failed,
        hours: hours(c.audioSeconds),
        fps: r.filesPerSecond.toFixed(2),
        hph: r.audioHoursPerHour.toFixed(1),
        eta: eta(r.etaSeconds),
      };
    };
    bar.start(c.total, 0, payload());
    return { update: () => bar.update(c.done, payload()), stop: () => bar.stop() };
  }
  const timer = setInterval(() => stream.write(`${progressLine(c)}\n`), options.intervalMs);
  timer.unref();
  return { update: () => undefined, stop: () => clearInterval(timer) };
}
