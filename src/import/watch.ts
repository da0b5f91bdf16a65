/**
 * A watched folder (`watch <dir>`, WATCH_DIR for `serve`), by polling, so
 * that network shares work (no inotify there).
 *
 * A file is taken only when complete: with the sidecar required, once its
 * `<base>.json` exists (the source writes it last: the commit marker);
 * otherwise once its size and mtime (and its sidecar's, if any) have not
 * changed for `stableSeconds`, seen by two polls at least that far apart.
 * After delivery it moves to done/<yyyy-mm-dd>/, a permanent failure to
 * failed/ with `<name>.error.json`; an outage leaves it in place, retried
 * with a growing delay. The state store (state.ts) makes a restart resume
 * without a second delivery, also between delivery and move.
 *
 * Nothing in the folder is trusted (docs/security.md, "File doors"): files are
 * read through safe-fs.ts (no links, no FIFOs, regular files only, sidecars
 * bounded); done/ and failed/ and every folder under them are reached without
 * following a link, and a move that would go through one is refused, logged,
 * and the file left in place; `.error.json` never reuses an existing name.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { runWithProcessGate, type ProcessGate } from '../media/process.js';
import { processFile, type ProcessContext } from './process-file.js';
import type { FileReport } from './file-report.js';
import { itemForFile, sidecarFor, walkAudio, type ImportItem, type MetadataSources } from './sources.js';
import type { JobDoor } from './job-door.js';
import { createExclusive, moveBetween, nameTaken, openDirInside, partsBelow, type OpenedDir } from '../safe-fs.js';
import type { WatchedFolderStatus } from '../watched-folder.js';

export interface WatchOptions {
  dir: string;
  sources: MetadataSources;
  sidecarRequired: boolean;
  stableSeconds: number;
  pollSeconds: number;
  concurrency: number;
  /** Admission of each file's ffmpeg runs (serve: the gateway's process slots, CONCURRENCY); none: the concurrency only. */
  gateFor?: ((bytes: number) => ProcessGate) | undefined;
  /** serve with the spool: each file becomes a job of the gateway's store (job-door.ts); none: delivered here. */
  door?: JobDoor | undefined;
}

const DONE_DIR = 'done';
const FAILED_DIR = 'failed';

interface Observation {
  signature: string;
  since: number;
}

/** Longest wait before an outage-failed file is tried again. */
const MAX_RETRY_DELAY_MS = 10 * 60_000;

export class FolderWatcher {
  private readonly seen = new Map<string, Observation>();
  private readonly retryAt = new Map<string, { at: number; failures: number }>();
  private readonly busy = new Set<string>();
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();
  private readonly queue: string[] = [];
  /** Files whose job (the gateway's store) is still open: left in place until it ends. */
  private readonly pending = new Map<string, { item: ImportItem; jobId: string }>();
  /** For status(): files seen by the last scan (less those moved since), and counts since the start. */
  private present = new Set<string>();
  private lastScanAt: number | undefined;
  private readonly totals = { taken: 0, delivered: 0, failed: 0 };

  constructor(
    private readonly options: WatchOptions,
    /** No delivery tools with a door: its gateway delivers. */
    private readonly ctx: Omit<ProcessContext, 'signal' | 'dryRun' | 'retryFailed' | 'deps'> & {
      deps: ProcessContext['deps'] | undefined;
    },
    private readonly logger: Logger,
    private readonly onFile: (report: FileReport, moved: string | undefined) => void = () => undefined,
  ) {}

  start(): void {
    // done/ and failed/ must be the gateway's own folders: created here, and never links.
    for (const own of [DONE_DIR, FAILED_DIR]) {
      openDirInside(this.options.dir, [own], true).then(
        (d) => d.close(),
        (error: unknown) =>
          this.logger.error(
            { err: error, dir: this.options.dir, folder: own },
            `watch: ${own}/ is not a real folder inside the watched folder: nothing will be moved there`,
          ),
      );
    }
    this.logger.info(
      {
        dir: this.options.dir,
        sidecar: this.options.sidecarRequired ? 'required' : 'optional',
        stableSeconds: this.options.stableSeconds,
        pollSeconds: this.options.pollSeconds,
      },
      'watching folder',
    );
    const tick = (): void => {
      this.scanning = this.scan()
        .catch((error: unknown) => this.logger.error({ err: error, dir: this.options.dir }, 'watch scan failed'))
        .finally(() => {
          if (!this.controller.signal.aborted) this.timer = setTimeout(tick, this.options.pollSeconds * 1000);
        });
    };
    tick();
  }

  async close(): Promise<void> {
    this.controller.abort();
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
    await this.scanning;
    await Promise.allSettled([...this.running]);
  }

  status(): WatchedFolderStatus {
    const retrying = [...this.retryAt.keys()].filter((f) => !this.busy.has(f)).length;
    const waiting = [...this.present].filter((f) => !this.busy.has(f) && !this.retryAt.has(f)).length;
    return {
      waiting,
      inProgress: this.busy.size,
      retrying,
      ...this.totals,
      lastScanAt: this.lastScanAt === undefined ? undefined : new Date(this.lastScanAt).toISOString(),
    };
  }

  /** One poll: observe every file, queue the complete ones, start work up to the concurrency. */
  async scan(now = Date.now()): Promise<void> {
    const { dir } = this.options;
    const files = await walkAudio(dir, new Set([DONE_DIR, FAILED_DIR]));
    const present = new Set(files);
    this.present = present;
    this.lastScanAt = now;
    await this.settlePending();
    for (const known of this.seen.keys()) if (!present.has(known)) this.seen.delete(known);
    for (const known of this.retryAt.keys()) if (!present.has(known)) this.retryAt.delete(known);
    for (const file of files) {
      if (this.controller.signal.aborted) return;
      if (this.busy.has(file)) continue;
      const retry = this.retryAt.get(file);
      if (retry && retry.at > now) continue;
      if (await this.isComplete(file, now)) {
        this.busy.add(file);
        this.queue.push(file);
      }
    }
    this.pump();
  }

  /** lstat only: a link or a FIFO is looked at, never through. */
  private async isComplete(file: string, now: number): Promise<boolean> {
    const sidecar = await lstat(sidecarFor(file)).catch(() => undefined);
    if (this.options.sidecarRequired) return sidecar !== undefined;
    const audio = await lstat(file).catch(() => undefined);
    if (!audio) return false;
    const signature = `${audio.size}:${audio.mtimeMs}:${sidecar ? `${sidecar.size}:${sidecar.mtimeMs}` : '-'}`;
    const before = this.seen.get(file);
    if (!before || before.signature !== signature) {
      this.seen.set(file, { signature, since: now });
      return false;
    }
    return now - before.since >= this.options.stableSeconds * 1000;
  }

  private pump(): void {
    while (this.running.size < this.options.concurrency && this.queue.length > 0 && !this.controller.signal.aborted) {
      const file = this.queue.shift()!;
      const job = this.take(file)
        .catch((error: unknown) => this.logger.error({ err: error, file }, 'watch: file not processed'))
        .finally(() => {
          // A file whose job is open stays busy (not taken again) until settlePending() moves it.
          if (!this.pending.has(file)) {
            this.busy.delete(file);
            this.seen.delete(file);
          }
          this.running.delete(job);
          this.pump();
        });
      this.running.add(job);
    }
  }

  /** Moves the files whose job ended. */
  private async settlePending(): Promise<void> {
    const door = this.options.door;
    if (!door) return;
    for (const [file, { item, jobId }] of [...this.pending]) {
      if (this.controller.signal.aborted) return;
      const report = await door.outcome(item, jobId).catch((error: unknown) => {
        this.logger.warn({ err: error, file: item.display, jobId }, 'watch: cannot read the job');
        return undefined;
      });
      if (!report) continue;
      this.pending.delete(file);
      await this.settle(file, item, report)
        .catch((error: unknown) => this.logger.error({ err: error, file: item.display }, 'watch: cannot move the file'))
        .finally(() => {
          this.busy.delete(file);
          this.seen.delete(file);
        });
    }
  }

  private async take(file: string): Promise<void> {
    const { dir } = this.options;
    const item = await itemForFile(file, dir, this.options.sources);
    this.totals.taken += 1;
    const door = this.options.door;
    const work = (): Promise<FileReport> =>
      door
        ? door.take(item, this.controller.signal)
        : processFile(item, {
            ...this.ctx,
            deps: this.ctx.deps!,
            signal: this.controller.signal,
            dryRun: false,
            retryFailed: true,
          });
    const { gateFor } = this.options;
    const bytes = gateFor
      ? await lstat(item.path).then(
          (s) => s.size,
          () => 0,
        )
      : 0;
    // A job door only copies the file into the store: the store's worker runs ffmpeg under the gateway's own gate.
    const report = await (gateFor && !door ? runWithProcessGate(gateFor(bytes), work) : work());
    if (report.status === 'accepted' && report.jobId) {
      this.pending.set(file, { item, jobId: report.jobId });
      this.logger.info({ file: item.display, jobId: report.jobId }, 'watch: taken; moved when its job ends');
      return;
    }
    await this.settle(file, item, report);
  }

  /** Where a file goes once its outcome is known: done/, failed/, or left in place for a later try. */
  private async settle(file: string, item: ImportItem, report: FileReport): Promise<void> {
    const { dir } = this.options;
    const log = {
      file: item.display,
      status: report.status,
      ids: report.ids,
      parts: report.parts,
      error: report.error,
    };
    if (report.status === 'interrupted') return;
    if (report.status === 'delivered' || report.status === 'already-delivered' || report.status === 'duplicate') {
      const date = new Date().toISOString().slice(0, 10);
      const moved = await this.moveOrHold(file, item.sidecarPath, [DONE_DIR, date], undefined, log);
      if (moved === undefined) return;
      this.retryAt.delete(file);
      this.present.delete(file);
      this.totals.delivered += 1;
      this.logger.info({ ...log, movedTo: path.relative(dir, moved) }, 'watch: delivered');
      this.onFile(report, moved);
      return;
    }
    if (report.status === 'invalid' || report.permanent) {
      const error = `${JSON.stringify({ file: item.display, status: report.status, error: report.error, failedAt: new Date().toISOString() }, null, 2)}\n`;
      const moved = await this.moveOrHold(file, item.sidecarPath, [FAILED_DIR], error, log);
      if (moved === undefined) return;
      this.retryAt.delete(file);
      this.present.delete(file);
      this.totals.failed += 1;
      this.logger.warn({ ...log, movedTo: path.relative(dir, moved) }, 'watch: failed for good');
      this.onFile(report, moved);
      return;
    }
    // An outage (or a 5xx after the retries): left in place, tried again later.
    const failures = (this.retryAt.get(file)?.failures ?? 0) + 1;
    // Not before the job life's delay (Retry-After honoured) when it gave one.
    const backoff = Math.min(MAX_RETRY_DELAY_MS, this.options.pollSeconds * 1000 * 2 ** failures);
    const delay = Math.max(report.retry?.delayMs ?? 0, backoff);
    this.retryAt.set(file, { at: Date.now() + delay, failures });
    this.logger.warn({ ...log, retryInMs: delay }, 'watch: not delivered, will retry');
    this.onFile(report, undefined);
  }

  /**
   * Moves the file (with its sidecar, and its `.error.json` when given) or, when that cannot be done safely (a link
   * or a non-folder on the way), logs an error and leaves it in place, to be looked at again after a while.
   */
  private async moveOrHold(
    file: string,
    sidecar: string | undefined,
    target: string[],
    errorJson: string | undefined,
    log: Record<string, unknown>,
  ): Promise<string | undefined> {
    try {
      return await this.moveWithSidecar(file, sidecar, target, errorJson);
    } catch (error) {
      const failures = (this.retryAt.get(file)?.failures ?? 0) + 1;
      const delay = Math.min(MAX_RETRY_DELAY_MS, this.options.pollSeconds * 1000 * 2 ** failures);
      this.retryAt.set(file, { at: Date.now() + delay, failures });
      this.logger.error(
        { ...log, err: error, target: target.join('/'), retryInMs: delay },
        `watch: not moved to ${target.join('/')}/ (${(error as Error).message}); the file stays where it is`,
      );
      return undefined;
    }
  }

  /** Moves the audio (and its sidecar) under `target`, keeping its sub-folder; never overwrites, never via a link. */
  private async moveWithSidecar(
    file: string,
    sidecar: string | undefined,
    target: string[],
    errorJson: string | undefined,
  ): Promise<string> {
    const { dir } = this.options;
    const parts = partsBelow(dir, file);
    if (!parts) throw new Error(`${file} is not inside ${dir}`);
    const name = parts[parts.length - 1]!;
    const from = await openDirInside(dir, parts.slice(0, -1), false);
    try {
      const to = await openDirInside(dir, [...target, ...parts.slice(0, -1)], true);
      try {
        const free = await freeName(to, name);
        await moveBetween(from, name, to, free);
        const stem = free.replace(/\.[^.]*$/, '');
        if (sidecar) {
          await moveBetween(from, path.basename(sidecar), to, `${stem}.json`).catch((error: unknown) => {
            if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          });
        }
        if (errorJson !== undefined) {
          // The file has moved: an error file that cannot be created (a name taken meanwhile) is logged, not fatal.
          await createExclusive(to, `${stem}.error.json`, errorJson).catch((error: unknown) =>
            this.logger.error({ err: error, file: stem }, 'watch: the .error.json could not be created'),
          );
        }
        return path.join(dir, ...target, ...parts.slice(0, -1), free);
      } finally {
        await to.close();
      }
    } finally {
      await from.close();
    }
  }
}

/** `name.wav`, else `name-1.wav`, `name-2.wav`, … (with no sidecar or error file, nor a link, in the way either). */
async function freeName(dir: OpenedDir, wanted: string): Promise<string> {
  const ext = path.extname(wanted);
  const base = wanted.slice(0, wanted.length - ext.length);
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? wanted : `${base}-${n}${ext}`;
    const stem = candidate.slice(0, candidate.length - ext.length);
    const taken = await Promise.all([candidate, `${stem}.json`, `${stem}.error.json`].map((p) => nameTaken(dir, p)));
    if (!taken.some(Boolean)) return candidate;
  }
}
