/**
 * A recording referenced in place: a file in a folder the gateway does not own (WATCH_DIR), which its job reads
 * where it is instead of a copy in the spool. Here, not in import/ or delivery/, because the door that takes the
 * file (import/job-door.ts) and the run that converts it (delivery/run-job.ts) both use it.
 *
 * Nothing in that folder is trusted (docs/security.md): the recorder may rewrite, replace or remove any name at
 * any time. So what was taken is pinned by its content: the SHA-256 and size recorded when the file was taken.
 * Every later read opens the name again the safe way (safe-fs.ts: no link, regular files only, below the folder),
 * hashes what it opened and reads only that descriptor; and a conversion checks at its end that the file did not
 * change while it ran (size, mtime, ctime of the same descriptor). A recording that changed is never converted
 * under the old job: the job fails with GONE, saying why. The inode is deliberately not part of the pin: a backup
 * restored to the same name is the same recording, and the hash says so.
 */
import { GatewayError } from './errors.js';
import { openRegularFile, sha256Opened, UnsafeFileError, type OpenedFile } from './safe-fs.js';

export interface SourceReference {
  /** The file's absolute path when it was taken. */
  path: string;
  /** The folder it must be below (reached component by component, no link followed); none: only the file itself
   * must not be a link (a path the operator named with --allow-outside). */
  root?: string | undefined;
  bytes: number;
  sha256: string;
}

export interface OpenedSource {
  /** A name for the opened file itself (/proc/<pid>/fd/<n>): what ffprobe and ffmpeg read. */
  readonly path: string;
  /** Throws GONE if the file was written to since it was opened: what was read from it cannot be trusted. */
  checkUnchanged(): Promise<void>;
  close(): Promise<void>;
}

/** The reference to a file the door just opened (and hashed through that descriptor). */
export function referenceTo(opened: OpenedFile, root: string | undefined, sha256: string): SourceReference {
  return { path: opened.source, ...(root !== undefined ? { root } : {}), bytes: opened.stat.size, sha256 };
}

const gone = (ref: SourceReference, why: string): GatewayError =>
  new GatewayError('GONE', `The recording ${ref.path} ${why} after the gateway took it: it was not converted`);

/** Opens the referenced file and proves it is still the recording that was taken. */
export async function openSource(ref: SourceReference, signal?: AbortSignal): Promise<OpenedSource> {
  let opened: OpenedFile;
  try {
    opened = await openRegularFile(ref.path, ref.root);
  } catch (error) {
    if (error instanceof UnsafeFileError)
      throw gone(ref, `was replaced by something that is not a plain file (${error.message})`);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw gone(ref, 'was removed from its folder');
    throw error;
  }
  try {
    if (opened.stat.size !== ref.bytes) {
      throw gone(ref, `changed (${opened.stat.size} bytes instead of ${ref.bytes})`);
    }
    if ((await sha256Opened(opened, signal)) !== ref.sha256) throw gone(ref, 'changed (its content is not the same)');
  } catch (error) {
    await opened.close();
    throw error;
  }
  const before = opened.stat;
  return {
    path: opened.path,
    checkUnchanged: async () => {
      const now = await opened.handle.stat();
      if (now.size !== before.size || now.mtimeMs !== before.mtimeMs || now.ctimeMs !== before.ctimeMs) {
        throw gone(ref, 'was written to while it was being converted');
      }
    },
    close: () => opened.close(),
  };
}
