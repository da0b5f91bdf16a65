/**
 * Where a job's audio lives: one folder per job under a root (the spool's
 * jobs/ folder, or BLOB_DIR shared by every process in the distributed
 * mode). Files are moved in durably (fsync of the file, then of the folders),
 * so a job that refers to them never outlives them in a crash.
 */
import { readdirSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, moveFile, moveFileDurable } from './durable.js';
import type { JobRecord, SpooledInput } from './job.js';
import type { SourceReference } from '../source-reference.js';

export const JOURNAL = 'job.json';
/** The console's cached waveform pictures (waveforms.ts): kept until the job is removed. */
export const WAVEFORM_FILE_RE = /^waveform-\d+\.png$/;

interface IncomingFile {
  path: string;
  originalName: string | undefined;
  extension: string;
  /** Its SHA-256 (hashed while it streamed in): recorded when the file is not fsynced, checked after a crash. */
  sha256?: string | undefined;
  /** A watched folder's file, referenced where it is: nothing is moved in (source-reference.ts). */
  source?: SourceReference | undefined;
}

export interface IncomingFiles {
  attachment: IncomingFile;
  remoteAttachment?: IncomingFile | undefined;
}

export class JobFolders {
  constructor(readonly root: string) {}

  dirFor(id: string): string {
    return path.join(this.root, id);
  }

  /**
   * Creates the job's folder and moves the uploaded files into it, the folders fsynced. The files' data is
   * fsynced too unless `syncData` is false: then their SHA-256 is recorded instead, and whoever answers 202
   * for the job fsyncs them first (run-job.ts persistFiles; docs/delivery.md, "What is fsynced, and when").
   */
  async storeInputs(
    id: string,
    files: IncomingFiles,
    syncData = true,
  ): Promise<{ attachment: SpooledInput; remoteAttachment?: SpooledInput | undefined }> {
    const dir = this.dirFor(id);
    await mkdir(dir, { mode: 0o700 });
    await fsyncDir(this.root);
    const move = async (name: 'attachment' | 'remoteAttachment', from: IncomingFile): Promise<SpooledInput> => {
      if (from.source) {
        const { originalName, extension, source } = from;
        return { file: '', originalName, extension, bytes: source.bytes, source };
      }
      const file = `input-${name}${from.extension ? `.${from.extension}` : ''}`;
      if (syncData) await moveFileDurable(from.path, path.join(dir, file));
      else await moveFile(from.path, path.join(dir, file));
      const { size } = await stat(path.join(dir, file));
      const sha256 = syncData ? undefined : from.sha256;
      const { originalName, extension } = from;
      return { file, originalName, extension, bytes: size, ...(sha256 ? { sha256 } : {}) };
    };
    const attachment = await move('attachment', files.attachment);
    const remote = files.remoteAttachment;
    const remoteAttachment = remote ? await move('remoteAttachment', remote) : undefined;
    // moveFileDurable fsynced the files; their names in the folder need the folder's fsync.
    await fsyncDir(dir);
    return { attachment, ...(remoteAttachment ? { remoteAttachment } : {}) };
  }

  /** Deletes the job's files its state no longer needs; answers the bytes it still holds. */
  async prune(job: JobRecord): Promise<number> {
    const keep = new Set(referencedFiles(job).map((f) => path.normalize(f)));
    const dir = this.dirFor(job.id);
    const removed = await removeUnlisted(dir, dir, keep).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw error;
    });
    if (removed > 0) await fsyncDir(dir);
    return sizeOf(dir, [...keep]);
  }

  /**
   * Whether the job's folder holds anything its record does not list (what an interrupted run leaves): one
   * synchronous listing (microseconds from the page cache, where the promise API's round-trips cost the spool's
   * start-up 2 s of main-thread CPU at 20,000 jobs), no stat. A sub-folder always counts: prune() looks into it.
   */
  hasLeftovers(job: JobRecord): boolean {
    const keep = new Set(referencedFiles(job).map((f) => path.normalize(f)));
    let entries;
    try {
      entries = readdirSync(this.dirFor(job.id), { withFileTypes: true });
    } catch {
      return false;
    }
    return entries.some(
      (e) => e.isDirectory() || (e.name !== JOURNAL && !WAVEFORM_FILE_RE.test(e.name) && !keep.has(e.name)),
    );
  }

  /** Removes the job's folder and everything in it. */
  async remove(id: string): Promise<void> {
    await rm(this.dirFor(id), { recursive: true, force: true });
    await fsyncDir(this.root);
  }
}

/**
 * Files a job still needs, relative to its folder: its inputs until it is ready (and while its parts are not
 * fsynced: they are rendered again from the inputs after a crash), then its undelivered parts.
 */
export function referencedFiles(job: JobRecord): string[] {
  if (job.state === 'delivered') return [];
  const inputs = ownInputs(job).map((i) => i.file);
  if (job.parts.length === 0) return inputs;
  const parts = job.parts.filter((p) => p.state !== 'delivered').map((p) => p.file);
  return job.partsSynced === false ? [...new Set([...inputs, ...parts])] : parts;
}

/** The job's inputs that its folder holds (not those referenced in a watched folder). */
export function ownInputs(job: JobRecord): SpooledInput[] {
  const { attachment, remoteAttachment } = job.inputs;
  return (remoteAttachment ? [attachment, remoteAttachment] : [attachment]).filter((i) => !i.source);
}

async function removeUnlisted(root: string, dir: string, keep: Set<string>): Promise<number> {
  let removed = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const rel = path.normalize(path.relative(root, full));
    if (rel === JOURNAL || WAVEFORM_FILE_RE.test(rel)) continue;
    if (entry.isDirectory()) {
      removed += await removeUnlisted(root, full, keep);
      if ((await readdir(full)).length === 0) {
        await rm(full, { recursive: true, force: true });
        removed += 1;
      }
    } else if (!keep.has(rel)) {
      await rm(full, { force: true });
      removed += 1;
    }
  }
  return removed;
}

async function sizeOf(dir: string, files: string[]): Promise<number> {
  let total = 0;
  for (const f of files)
    total += await stat(path.join(dir, f)).then(
      (s) => s.size,
      () => 0,
    );
  return total;
}
