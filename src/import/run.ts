/**
 * An import run: every item through processFile(), each outcome counted,
 * reported (CSV) and shown (progress) as it comes. `concurrency` bounds the
 * ffmpeg runs at once; twice as many files are in flight, so that one file's
 * delivery (an HTTP upload, no CPU to speak of) overlaps the next one's
 * render instead of leaving its core idle.
 *
 * A file Imagicle could not take for a transient cause (down, 429, 503,
 * connection errors: the job life's "retry") is not failed: it waits, out of
 * the slots, for the delay the job life gave (Retry-After honoured), then is
 * taken again; a 429/503 pauses every slot for that delay. A file waits at
 * most `maxWaitMs` from its first transient failure in this run; then (or
 * on Ctrl-C, or a kill) it is left pending in the state, for a plain rerun.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runWithProcessGate } from '../media/process.js';
import { ProcessSlots } from '../pipeline/process-slots.js';
import type { PriorTries } from '../delivery/deliver-recording.js';
import { processFile, type ProcessContext } from './process-file.js';
import type { FileReport } from './file-report.js';
import { count, newCounters, type Counters } from './progress.js';
import type { ImportItem } from './sources.js';
import type { GatewayDoor } from './gateway-door.js';
import { processViaGateway } from './gateway-file.js';

export interface RunHooks {
  onStart?: (counters: Counters) => void;
  onFile?: (report: FileReport, counters: Counters) => void;
  /** A file is waiting for Imagicle (a transient cause); it is taken again later. */
  onWait?: (report: FileReport, counters: Counters) => void;
}

export interface RunSummary {
  counters: Counters;
  reports: FileReport[];
  elapsedMs: number;
  interrupted: boolean;
}

/** The default of `--max-wait`: long enough for a restart or a maintenance window of Imagicle. */
export const DEFAULT_MAX_WAIT_MS = 60 * 60_000;

interface Waiting {
  item: ImportItem;
  report: FileReport;
  dueAt: number;
}

export async function runItems(
  items: readonly ImportItem[],
  // No delivery tools with --gateway: the gateway delivers.
  ctx: Omit<ProcessContext, 'deps'> & { deps: ProcessContext['deps'] | undefined },
  concurrency: number,
  hooks: RunHooks = {},
  options: {
    /** How long a file may wait for Imagicle in this run (`--max-wait`). */
    maxWaitMs?: number | undefined;
    /** `--gateway`: each file becomes a job of that gateway, followed to its end. */
    gateway?: GatewayDoor | undefined;
  } = {},
): Promise<RunSummary> {
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  const { gateway } = options;
  const counters = newCounters(items.length);
  hooks.onStart?.(counters);
  const reports: FileReport[] = [];
  // One lane (no short/long split) and no refusal: the run's own files wait their turn.
  const renders = new ProcessSlots({ concurrency, queueLimit: Number.MAX_SAFE_INTEGER, longJobBytes: Infinity });
  const gate = renders.patientGateFor(0);
  const tries = new Map<string, PriorTries>();
  const waiting = new Map<string, Waiting>();
  /** When each file first waited in this run: `maxWaitMs` counts from there. */
  const firstWait = new Map<string, number>();
  let pausedUntil = 0;
  let next = 0;
  /** Wakes the idle slots when a waiting file becomes due or the run is stopped. */
  let wake = new AbortController();
  const onAbort = (): void => wake.abort();
  ctx.signal.addEventListener('abort', onAbort, { once: true });

  const finish = (report: FileReport): void => {
    reports.push(report);
    count(counters, report);
    hooks.onFile?.(report, counters);
  };
  const due = (now: number): Waiting | undefined => {
    for (const w of waiting.values()) if (w.dueAt <= now) return w;
    return undefined;
  };
  const nextItem = (now: number): ImportItem | undefined => {
    const ready = due(now);
    if (ready) {
      waiting.delete(ready.item.path);
      counters.waiting = waiting.size;
      return ready.item;
    }
    return next < items.length ? items[next++] : undefined;
  };
  const settle = (item: ImportItem, report: FileReport): void => {
    if (report.status !== 'waiting') {
      tries.delete(item.path);
      finish(report);
      return;
    }
    const now = Date.now();
    const since = firstWait.get(item.path) ?? now;
    firstWait.set(item.path, since);
    counters.lastUpstreamError = report.error;
    if (report.tries) tries.set(item.path, report.tries);
    const delayMs = report.retry?.delayMs ?? 0;
    if (now + delayMs - since > maxWaitMs) {
      // Waited long enough in this run: left pending for a rerun (never failed).
      tries.delete(item.path);
      finish(report);
      return;
    }
    if (report.retry?.backpressure) pausedUntil = Math.max(pausedUntil, now + delayMs);
    waiting.set(item.path, { item, report, dueAt: now + delayMs });
    counters.waiting = waiting.size;
    hooks.onWait?.(report, counters);
    // A slot that went idle waits for this file.
    wake.abort();
  };
  const slot = async (): Promise<void> => {
    while (!ctx.signal.aborted) {
      const now = Date.now();
      const item = now >= pausedUntil ? nextItem(now) : undefined;
      if (!item) {
        if (waiting.size === 0 && next >= items.length) return;
        // Nothing to take now: sleep until the next waiting file is due, the pause ends, or another slot wakes us.
        const soonest = Math.min(...[...waiting.values()].map((w) => w.dueAt), Infinity);
        const until = Math.max(pausedUntil, Number.isFinite(soonest) ? soonest : now + 1000);
        const signal = wake.signal;
        await sleep(Math.max(1, until - now), undefined, { signal }).catch(() => undefined);
        if (wake.signal === signal && signal.aborted && !ctx.signal.aborted) wake = new AbortController();
        continue;
      }
      const report = gateway
        ? await processViaGateway(item, ctx, gateway)
        : await runWithProcessGate(gate, () => processFile(item, { ...ctx, deps: depsOf(ctx.deps), tries }));
      if (report.status === 'interrupted') continue;
      settle(item, report);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(2 * concurrency, items.length)) }, slot));
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
  // Stopped (Ctrl-C) while files waited: they are left pending, and said so.
  for (const w of waiting.values()) finish(w.report);
  counters.waiting = 0;
  return { counters, reports, elapsedMs: Date.now() - counters.startedAt, interrupted: ctx.signal.aborted };
}

function depsOf(deps: ProcessContext['deps'] | undefined): ProcessContext['deps'] {
  if (!deps) throw new Error('an import without --gateway needs its delivery tools');
  return deps;
}

/** Exit status when files were left waiting for Imagicle (EX_TEMPFAIL): rerun the same command later. */
export const WAITING_EXIT = 75;

/**
 * 0: everything delivered or already there; 1: anything failed, invalid or left undone; 75: nothing failed, but
 * files were left waiting for Imagicle.
 */
export function exitCodeFor(s: RunSummary): 0 | 1 | typeof WAITING_EXIT {
  if (s.interrupted) return 1;
  if (s.reports.some((r) => r.status === 'failed' || r.status === 'invalid')) return 1;
  return s.reports.some((r) => r.status === 'waiting') ? WAITING_EXIT : 0;
}
