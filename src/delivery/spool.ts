/**
 * The durable spool: one folder per job under SPOOL_DIR/jobs/<id>/, with its
 * files and a journal, job.json, replaced atomically on every state change
 * (durable.ts). In memory: the same records, the bytes they hold, a dedup
 * index, and which jobs are being worked on in this process.
 *
 * Layout and life cycle are described in docs/delivery.md.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { JobFolders, JOURNAL, ownInputs, referencedFiles, type IncomingFiles } from './blob-store.js';
import { fsyncDir, fsyncFile, isTempName, writeFileDurable } from './durable.js';
import { sha256File } from './dedup.js';
import type { JobStore } from './job-store.js';
import { JobIndex, type JobPage, type JobQuery } from './job-index.js';
import { DueQueue } from './due-queue.js';
import { newJobRecord, recoverInterrupted, retentionEndsAt } from './job-life.js';
import { JOB_STATES, type JobInit, type JobRecord, type JobState } from './job.js';

export interface SpoolOptions {
  dir: string;
  /** How long delivered jobs' journals (no audio) are kept: for the dedup window and GET /v1/jobs/{id}. */
  deliveredRetentionMs: number;
  /** How long failed jobs are kept for an operator (job-life.ts jobRetention); absent: until an operator removes them. */
  failedRetentionMs?: number | undefined;
  logger: Logger;
}

export interface ResumeSummary {
  jobs: number;
  unfinished: number;
  byState: Record<JobState, number>;
  /** Parts found "delivering": their attempt may have reached Imagicle, so resending may duplicate. */
  interruptedAttempts: number;
  orphansRemoved: number;
  /** Jobs whose never-fsynced inputs a crash tore (never acknowledged): removed. */
  tornRemoved: number;
}

const ID_RE = /^[0-9a-f-]{36}$/;

/**
 * What a delivered job needs in memory: the jobs API view, the duplicate
 * check and the duplicate's replayed answer. The caller's metadata, the
 * stereo options and the forwarded credential are dropped.
 */
function slimDelivered(job: JobRecord): JobRecord {
  const { startDateTime, direction, localParty, pbxCallId } = job.metadata;
  return {
    ...job,
    metadata: {
      startDateTime,
      direction,
      localParty: { username: localParty.username, phoneNumber: localParty.phoneNumber },
      pbxCallId,
    },
    stereoOptions: undefined,
    callerAuthorization: undefined,
    parts: job.parts.map((p) => ({
      ...p,
      metadata: { startDateTime: p.metadata.startDateTime, duration: p.metadata.duration },
    })),
  };
}

export class Spool implements JobStore {
  readonly fsyncPlan = 'deferred';
  readonly jobsDir: string;
  private readonly folders: JobFolders;
  private readonly jobs = new Map<string, JobRecord>();
  private readonly bytes = new Map<string, number>();
  /** The sum of `bytes`, kept as it changes (/metrics reads it on every scrape). */
  private totalBytes = 0;
  private readonly ownerBytes = new Map<string, number>();
  private readonly byDedupKey = new Map<string, Set<string>>();
  private readonly claimed = new Set<string>();
  private readonly saving = new Map<string, Promise<void>>();
  private readonly index = new JobIndex();
  /** Open jobs by what they need next: a preparation (received) or a delivery attempt (ready). */
  readonly toPrepare = new DueQueue();
  readonly toDeliver = new DueQueue();
  /** Acceptance order, for "oldest first". */
  private readonly ages = new Map<string, number>();
  private age = 0;
  private pruning: Promise<void> = Promise.resolve();
  private closed = false;

  /** SPOOL_DIR: jobs/ and, beside it, short-lived temp files (waveforms.ts). */
  readonly dir: string;

  private constructor(private readonly options: SpoolOptions) {
    this.dir = options.dir;
    this.jobsDir = path.join(options.dir, 'jobs');
    this.folders = new JobFolders(this.jobsDir);
  }

  /** Opens the spool: loads every journal, removes what no journal refers to, and marks interrupted attempts. */
  static async open(options: SpoolOptions): Promise<{ spool: Spool; summary: ResumeSummary }> {
    const spool = new Spool(options);
    await mkdir(spool.jobsDir, { recursive: true, mode: 0o700 });
    const summary = await spool.load();
    return { spool, summary };
  }

  jobDir(id: string): string {
    return this.folders.dirFor(id);
  }

  /** One process: claim()/release() keep the request and the worker apart, so the lease cannot be lost. */
  confirmLease(): Promise<void> {
    return Promise.resolve();
  }

  get(id: string): JobRecord | undefined {
    return this.jobs.get(id);
  }

  /** Every job, in the order the spool took them in (at start-up: oldest first), without copying or sorting. */
  all(): IterableIterator<JobRecord> {
    return this.jobs.values();
  }

  /** Every job, oldest first (tests and tools; the jobs API pages with page()). */
  list(state?: JobState): JobRecord[] {
    const all = [...this.jobs.values()];
    return (state ? all.filter((j) => j.state === state) : all).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** One page of the jobs API, newest first, in O(page) (job-index.ts). */
  page(query: JobQuery): JobPage {
    return this.index.page(query, (id) => this.jobs.get(id));
  }

  /** When the oldest job not delivered yet (failed ones included) was accepted. */
  oldestUndeliveredAt(): string | undefined {
    return this.index.oldest(
      (id) => {
        const job = this.jobs.get(id);
        return job !== undefined && job.state !== 'delivered';
      },
      (id) => this.jobs.get(id)?.createdAt,
    );
  }

  /** Jobs per state (an owner's, or everyone's), kept as jobs change. */
  counts(owner?: string): Record<JobState, number> {
    return this.index.countsOf(owner);
  }

  /** Disk held by spooled audio (journals aside). */
  usedBytes(): number {
    return this.totalBytes;
  }

  /** Disk held by one owner's audio (kept as jobs change). */
  usedBytesOf(owner: string): number {
    return this.ownerBytes.get(owner) ?? 0;
  }

  /** Records the bytes a job's folder holds, and its owner's total. */
  private setBytes(job: JobRecord, bytes: number): void {
    const owner = job.owner ?? '';
    const delta = bytes - (this.bytes.get(job.id) ?? 0);
    this.bytes.set(job.id, bytes);
    this.totalBytes += delta;
    this.ownerBytes.set(owner, (this.ownerBytes.get(owner) ?? 0) + delta);
  }

  /** Disk held by one job's audio. */
  bytesOf(id: string): number {
    return this.bytes.get(id) ?? 0;
  }

  /** A job with this dedup key, accepted within the window and not failed. */
  findDuplicate(key: string, windowMs: number, now = Date.now()): JobRecord | undefined {
    const ids = this.byDedupKey.get(key);
    if (!ids) return undefined;
    let best: JobRecord | undefined;
    for (const id of ids) {
      const job = this.jobs.get(id);
      if (!job || job.state === 'failed' || Date.parse(job.createdAt) + windowMs < now) continue;
      if (!best || job.createdAt < best.createdAt) best = job;
    }
    return best;
  }

  /** In-process exclusivity: a request and the worker never work on the same job at once. */
  claim(id: string): boolean {
    if (this.claimed.has(id) || !this.jobs.has(id)) return false;
    this.claimed.add(id);
    return true;
  }

  release(id: string): void {
    this.claimed.delete(id);
  }

  isClaimed(id: string): boolean {
    return this.claimed.has(id);
  }

  /**
   * Creates a job in state `received`: the uploaded files are moved into its
   * folder and fsynced, then the journal is written. When this resolves, the
   * job survives a crash. The job comes back claimed by the caller (release() it),
   * so the worker cannot pick it up half-created.
   */
  async create(
    init: JobInit,
    files: IncomingFiles,
    now = new Date(),
    /** False: the files' data is not fsynced yet, only hashed (the caller fsyncs before it answers 202). */
    syncInputs = true,
  ): Promise<JobRecord> {
    const id = randomUUID();
    const remote = files.remoteAttachment;
    const hashed = files.attachment.sha256 !== undefined && (!remote || remote.sha256 !== undefined);
    const deferred = !syncInputs && hashed;
    const { attachment, remoteAttachment } = await this.folders.storeInputs(id, files, !deferred);
    const inputs = { attachment, ...(remoteAttachment ? { remoteAttachment } : {}) };
    const job = newJobRecord(init, inputs, now, id);
    if (deferred) job.inputsSynced = false;
    this.claimed.add(id);
    this.track(job);
    this.setBytes(job, heldBytesOf(job));
    try {
      await this.save(job);
    } catch (error) {
      await this.remove(id).catch(() => undefined);
      this.claimed.delete(id);
      throw error;
    }
    return job;
  }

  /** Persists the job's current record (serialised per job, each write atomic and durable). */
  save(job: JobRecord): Promise<void> {
    job.updatedAt = new Date().toISOString();
    const snapshot = JSON.stringify(job, null, 1);
    const previous = this.saving.get(job.id) ?? Promise.resolve();
    const next = previous.then(async () => {
      if (!this.jobs.has(job.id)) return;
      await writeFileDurable(path.join(this.jobDir(job.id), JOURNAL), snapshot);
      // Delivered jobs stay only for the dedup window and the jobs API: keep a slim copy in memory (the journal has it all).
      if (job.state === 'delivered' && this.jobs.has(job.id)) this.jobs.set(job.id, slimDelivered(job));
    });
    // The indexes follow the record in memory at once (what the worker and the API see), the journal right after.
    if (this.jobs.has(job.id)) this.reindex(job);
    const settled = next.catch(() => undefined);
    this.saving.set(job.id, settled);
    void settled.then(() => {
      if (this.saving.get(job.id) === settled) this.saving.delete(job.id);
    });
    return next;
  }

  /** Deletes the job's files that its state no longer needs, and recounts its bytes. */
  async prune(job: JobRecord): Promise<void> {
    const held = await this.folders.prune(job);
    // A job removed meanwhile holds nothing any more.
    if (this.jobs.has(job.id)) this.setBytes(job, held);
  }

  /** Removes a job and everything in its folder. */
  async remove(id: string): Promise<void> {
    const job = this.jobs.get(id);
    await this.saving.get(id);
    this.jobs.delete(id);
    if (job) this.setBytes(job, 0);
    this.totalBytes -= this.bytes.get(id) ?? 0;
    this.bytes.delete(id);
    this.index.remove(id);
    this.toPrepare.delete(id);
    this.toDeliver.delete(id);
    this.ages.delete(id);
    if (job?.dedupKey) this.byDedupKey.get(job.dedupKey)?.delete(id);
    await this.folders.remove(id);
  }

  /** Removes finished jobs whose retention (job-life.ts retentionEndsAt) is over; a claimed job waits for the next pass. */
  async purgeFinished(now = Date.now()): Promise<number> {
    const retention = {
      deliveredMs: this.options.deliveredRetentionMs,
      failedMs: this.options.failedRetentionMs ?? Infinity,
    };
    let purged = 0;
    for (const job of [...this.jobs.values()]) {
      const ends = retentionEndsAt(job, retention);
      if (ends === undefined || ends >= now || !this.claim(job.id)) continue;
      try {
        await this.remove(job.id);
      } finally {
        this.release(job.id);
      }
      purged += 1;
    }
    return purged;
  }

  /**
   * A job whose inputs were moved in without an fsync (inputsSynced false) and that still needs them: their
   * SHA-256 must match what was received; then they are fsynced, so the check is not needed again.
   */
  private async inputsIntact(job: JobRecord, dir: string): Promise<boolean> {
    if (job.inputsSynced !== false || job.state === 'delivered') return true;
    const needed = new Set(referencedFiles(job));
    for (const input of ownInputs(job)) {
      if (!needed.has(input.file)) continue;
      const file = path.join(dir, input.file);
      const actual = await sha256File(file).catch(() => undefined);
      if (!input.sha256 || actual !== input.sha256) return false;
      await fsyncFile(file);
    }
    job.inputsSynced = undefined;
    await writeFileDurable(path.join(dir, JOURNAL), JSON.stringify(job, null, 1));
    return true;
  }

  /** Puts a job back in the worker's schedule as its record says (after a run whose journal write failed). */
  reschedule(job: JobRecord): void {
    if (this.jobs.get(job.id) === job) this.reindex(job);
  }

  /** Keeps the indexes and the worker's schedule in step with the record. */
  private reindex(job: JobRecord): void {
    this.index.upsert(job);
    const age = this.ages.get(job.id) ?? 0;
    const due = job.nextAttemptAt !== undefined ? Date.parse(job.nextAttemptAt) : 0;
    if (job.state === 'received') {
      this.toDeliver.delete(job.id);
      this.toPrepare.set(job.id, due, age);
    } else if (job.state === 'ready') {
      this.toPrepare.delete(job.id);
      this.toDeliver.set(job.id, due, age);
    } else {
      this.toPrepare.delete(job.id);
      this.toDeliver.delete(job.id);
    }
  }

  private track(job: JobRecord): void {
    this.jobs.set(job.id, job);
    this.ages.set(job.id, ++this.age);
    this.reindex(job);
    if (job.dedupKey) {
      const ids = this.byDedupKey.get(job.dedupKey) ?? new Set<string>();
      ids.add(job.id);
      this.byDedupKey.set(job.dedupKey, ids);
    }
  }

  private async load(): Promise<ResumeSummary> {
    const byState = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    const summary: ResumeSummary = {
      jobs: 0,
      unfinished: 0,
      byState,
      interruptedAttempts: 0,
      orphansRemoved: 0,
      tornRemoved: 0,
    };
    const log = this.options.logger;
    // Temp files a crash left beside jobs/ (a waveform being drawn from a delivered part).
    for (const entry of await readdir(this.dir, { withFileTypes: true })) {
      if (entry.isFile() && isTempName(entry.name)) await rm(path.join(this.dir, entry.name), { force: true });
    }
    // Journals are read synchronously, a batch at a time (a small file from the page cache costs microseconds; the
    // promise API's four round-trips through libuv's thread pool made 20,000 of them take 3-5 times longer), with a
    // turn of the event loop between batches so that /healthz keeps answering. Then tracked oldest first.
    const loaded: JobRecord[] = [];
    const orphans: string[] = [];
    const unsynced: Array<{ job: JobRecord; dir: string }> = [];
    const entries = await readdir(this.jobsDir, { withFileTypes: true });
    for (let i = 0; i < entries.length; i++) {
      if (i > 0 && i % LOAD_BATCH === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const entry = entries[i]!;
      // Concatenated, not path.join(): the names are plain (ID_RE), and join's normalising was 8 % of the load.
      const dir = `${this.jobsDir}${path.sep}${entry.name}`;
      if (!entry.isDirectory() || !ID_RE.test(entry.name)) {
        // Not a job: a leftover temp file or something foreign. Only our temp files are removed.
        if (isTempName(entry.name)) orphans.push(dir);
        continue;
      }
      let job: JobRecord;
      try {
        job = JSON.parse(readFileSync(`${dir}${path.sep}${JOURNAL}`, 'utf8')) as JobRecord;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          // Created but never journaled: the crash came before the job was accepted.
          orphans.push(dir);
          summary.orphansRemoved += 1;
        } else {
          log.error({ job: entry.name, err: error }, 'unreadable spool journal: left in place');
        }
        continue;
      }
      if (job.inputsSynced === false && job.state !== 'delivered') unsynced.push({ job, dir });
      else loaded.push(job);
    }
    await forEachLimited(orphans, LOAD_CONCURRENCY, (dir) => rm(dir, { recursive: true, force: true }));
    await forEachLimited(unsynced, LOAD_CONCURRENCY, async ({ job, dir }) => {
      if (await this.inputsIntact(job, dir)) return void loaded.push(job);
      // Its inputs were never fsynced and a crash (power loss) tore them: the caller was not answered 201 or
      // 202 for it (those come after the fsync), so the recording is still the caller's to send.
      const what = 'spooled upload torn by a crash before it was acknowledged: removed';
      log.warn({ jobId: job.id, state: job.state }, what);
      await rm(dir, { recursive: true, force: true });
      summary.tornRemoved += 1;
    });
    loaded.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const interrupted: JobRecord[] = [];
    for (const job of loaded) {
      const count = recoverInterrupted(job);
      summary.interruptedAttempts += count;
      if (count > 0) interrupted.push(job);
      this.track(job);
      // Until the background prune has counted the folder: what the record says it holds.
      this.setBytes(job, heldBytesOf(job));
      summary.jobs += 1;
      summary.byState[job.state] += 1;
      if (job.state === 'received' || job.state === 'ready') summary.unfinished += 1;
    }
    await forEachLimited(interrupted, LOAD_CONCURRENCY, (job) => this.save(job));
    const ids = loaded.map((j) => j.id);
    // After the open: the spool is ready first.
    this.pruning = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.pruneInBackground(ids));
    await fsyncDir(this.jobsDir);
    return summary;
  }

  /**
   * Leftovers of interrupted runs are deleted after the spool opened, each job under its claim (a job the worker
   * holds is pruned by its run instead). The bytes each job holds are the ones its journal records (set by load());
   * only a folder listed with something its record does not name is pruned (and counted again). A job whose next
   * run prepares it is skipped: that run prunes its folder first (run-job.ts), and until then its leftovers (of at
   * most the runs the crash interrupted) are not counted.
   */
  private async pruneInBackground(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i++) {
      if (this.closed) return;
      // A batch of synchronous listings between two turns of the event loop: requests keep being answered.
      if (i > 0 && i % PRUNE_BATCH === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const id = ids[i]!;
      const job = this.jobs.get(id);
      if (!job || preparedByItsNextRun(job) || this.claimed.has(id) || !this.folders.hasLeftovers(job)) continue;
      if (!this.claim(id)) continue;
      try {
        await this.prune(job);
      } catch (error) {
        this.options.logger.warn({ err: error, jobId: id }, 'pruning a spooled job failed');
      } finally {
        this.release(id);
      }
    }
  }

  /** Resolves once the start-up prune (in the background) is done. */
  pruned(): Promise<void> {
    return this.pruning;
  }

  /** Stops background work (the start-up prune) and waits for it. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pruning;
  }
}

const LOAD_CONCURRENCY = 32;
/** Job folders listed between two turns of the event loop by the start-up prune. */
const PRUNE_BATCH = 200;

/** Its next run renders it from its inputs, and prunes its folder first (run-job.ts). */
function preparedByItsNextRun(job: JobRecord): boolean {
  return (job.state === 'received' || job.state === 'ready') && (job.parts.length === 0 || job.partsSynced === false);
}
/** Journals read between two turns of the event loop at start-up. */
const LOAD_BATCH = 500;

/** Runs `fn` over `items`, at most `limit` at once. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** The audio bytes a job's record says its folder holds. */
function heldBytesOf(job: JobRecord): number {
  if (job.state === 'delivered') return 0;
  const inputs = ownInputs(job).reduce((sum, i) => sum + (i.bytes ?? 0), 0);
  if (job.parts.length === 0) return inputs;
  const parts = job.parts.filter((p) => p.state !== 'delivered').reduce((sum, p) => sum + p.bytes, 0);
  return job.partsSynced === false ? inputs + parts : parts;
}
