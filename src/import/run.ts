/**
 * An import run: every item through processFile(), each outcome counted,
 * reported (CSV) and shown (progress) as it comes. `concurrency` bounds the
 * ffmpeg runs at once; twice as many files are in flight, so that one file's
 * delivery (an HTTP upload, no CPU to speak of) overlaps the next one's
 * render instead of leaving its core idle.
 */
import { runWithProcessGate } from '../media/process.js';
import { ProcessSlots } from '../pipeline/process-slots.js';
import { processFile, type FileReport, type ProcessContext } from './process-file.js';
import { count, newCounters, type Counters } from './progress.js';
import type { ImportItem } from './sources.js';

export interface RunHooks {
  onStart?: (counters: Counters) => void;
  onFile?: (report: FileReport, counters: Counters) => void;
}

export interface RunSummary {
  counters: Counters;
  reports: FileReport[];
  elapsedMs: number;
  interrupted: boolean;
}

export async function runItems(
  items: readonly ImportItem[],
  ctx: ProcessContext,
  concurrency: number,
  hooks: RunHooks = {},
): Promise<RunSummary> {
  const counters = newCounters(items.length);
  hooks.onStart?.(counters);
  const reports: FileReport[] = [];
  // One lane (no short/long split) and no refusal: the run's own files wait their turn.
  const renders = new ProcessSlots({ concurrency, queueLimit: Number.MAX_SAFE_INTEGER, longJobBytes: Infinity });
  const gate = renders.patientGateFor(0);
  let next = 0;
  const slot = async (): Promise<void> => {
    while (next < items.length && !ctx.signal.aborted) {
      const item = items[next++]!;
      const report = await runWithProcessGate(gate, () => processFile(item, ctx));
      if (report.status === 'interrupted') continue;
      reports.push(report);
      count(counters, report);
      hooks.onFile?.(report, counters);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(2 * concurrency, items.length)) }, slot));
  return { counters, reports, elapsedMs: Date.now() - counters.startedAt, interrupted: ctx.signal.aborted };
}

/** 0: everything delivered or already there; 1: anything failed, invalid or left undone. */
export function exitCodeFor(s: RunSummary): 0 | 1 {
  if (s.interrupted) return 1;
  return s.reports.some((r) => r.status === 'failed' || r.status === 'invalid') ? 1 : 0;
}
