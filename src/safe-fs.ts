/**
 * The file doors' only way to touch a folder someone else writes into (a
 * recorder's WATCH_DIR, an import's folder): nothing there is trusted.
 *
 * - A file is opened once, with O_NOFOLLOW | O_NONBLOCK (a link is refused, a
 *   FIFO cannot block the open), then fstat'ed: only a regular file is kept,
 *   and it is read only through that descriptor. What runs later (the copy
 *   into the work folder, ffprobe, ffmpeg) gets `/proc/<pid>/fd/<n>`, a name
 *   that is the gateway's and always means the opened file, whatever happens
 *   to the recorder's name meanwhile.
 * - A folder is reached component by component from the root, each opened
 *   with O_DIRECTORY | O_NOFOLLOW through the one before it (the openat()
 *   walk, via /proc/self/fd), so no link and no swap can lead outside the
 *   root; moves and the `.error.json` go through those descriptors.
 * - Small files (sidecars) are read with a byte limit and their JSON nesting
 *   is checked before it is parsed.
 *
 * Without /proc (not Linux) the same checks run on plain paths, each
 * component lstat'ed: links are refused, but a swap between the check and the
 * use is then possible (docs/security.md).
 */
import { constants, existsSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

/** A refusal that no retry can change: the doors report it and move the file to failed/ (never an outage). */
export class UnsafeFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeFileError';
  }
}

/** Whether this process can name its own descriptors (/proc/<pid>/fd): Linux. */
const PROC_FD = existsSync(`/proc/${process.pid}/fd`);

/** A name for an open descriptor that the gateway controls (also valid in its child processes). */
const fdName = (fd: number): string => `/proc/${process.pid}/fd/${fd}`;

export interface OpenedFile {
  /** Where the file was (for messages). */
  readonly source: string;
  readonly stat: Stats;
  readonly handle: FileHandle;
  /** A path to the opened file itself: /proc/<pid>/fd/<n> (the source path without /proc). */
  readonly path: string;
  close(): Promise<void>;
}

export interface OpenedDir {
  /** The folder's real path, for messages. */
  readonly display: string;
  /** Joins a name inside this folder, through its descriptor. */
  join(name: string): string;
  close(): Promise<void>;
}

function describeType(s: Stats): string {
  if (s.isSymbolicLink()) return 'a symbolic link';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  if (s.isDirectory()) return 'a folder';
  return 'not a regular file';
}

function refusal(what: string, error: unknown): UnsafeFileError | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'EMLINK') return new UnsafeFileError(`${what} is a symbolic link: refused`);
  if (code === 'ENOTDIR') return new UnsafeFileError(`${what} is not a folder: refused`);
  if (code === 'ENXIO') return new UnsafeFileError(`${what} is a socket or device: refused`);
  return undefined;
}

/** Why a component could not be opened as a folder: what is there instead, when that is the reason. */
async function notAFolder(display: string, through: string, error: unknown): Promise<unknown> {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOTDIR' && code !== 'ELOOP') return error;
  const s = await lstat(through).catch(() => undefined);
  return new UnsafeFileError(`${display} is ${s ? describeType(s) : 'not a folder'}, not a real folder: refused`);
}

function checkName(name: string, where: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new UnsafeFileError(`${where}: "${name}" is not a plain name`);
  }
}

/**
 * The folder `root/parts…`, each component a real folder (not a link) inside `root`; missing ones are created
 * when `create`. `root` itself is the operator's (it may be a link).
 */
export async function openDirInside(root: string, parts: readonly string[], create: boolean): Promise<OpenedDir> {
  let display = path.resolve(root);
  if (!PROC_FD) return openDirByPath(display, parts, create);
  let current = await open(display, O_RDONLY | O_DIRECTORY);
  try {
    for (const part of parts) {
      checkName(part, display);
      const next = path.join(display, part);
      const through = `${fdName(current.fd)}/${part}`;
      let opened: FileHandle;
      try {
        opened = await open(through, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw await notAFolder(next, through, error);
        await mkdir(through).catch((e: unknown) => {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        });
        opened = await open(through, O_RDONLY | O_DIRECTORY | O_NOFOLLOW).catch(async (e: unknown) => {
          throw await notAFolder(next, through, e);
        });
      }
      await current.close();
      current = opened;
      display = next;
    }
  } catch (error) {
    await current.close();
    throw error;
  }
  const dir = current;
  return {
    display,
    join: (name) => {
      checkName(name, display);
      return `${fdName(dir.fd)}/${name}`;
    },
    close: () => dir.close(),
  };
}

/** The fallback without /proc: every component lstat'ed (links refused; a later swap is not caught). */
async function openDirByPath(root: string, parts: readonly string[], create: boolean): Promise<OpenedDir> {
  let display = root;
  for (const part of parts) {
    checkName(part, display);
    display = path.join(display, part);
    let s = await lstat(display).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && create) return undefined;
      throw e;
    });
    if (!s) {
      await mkdir(display).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      });
      s = await lstat(display);
    }
    if (!s.isDirectory()) throw new UnsafeFileError(`${display} is ${describeType(s)}: refused`);
  }
  const at = display;
  return {
    display: at,
    join: (name) => {
      checkName(name, at);
      return path.join(at, name);
    },
    close: async () => undefined,
  };
}

/** The parts of `file` below `root`, or undefined when it is not below it. */
export function partsBelow(root: string, file: string): string[] | undefined {
  const relative = path.relative(path.resolve(root), path.resolve(file));
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return relative.split(path.sep);
}

export function isInside(root: string, file: string): boolean {
  return partsBelow(root, file) !== undefined;
}

/**
 * Opens a regular file for reading, never through a link, never blocking on a FIFO. With `within`, the file must
 * be below that folder and no component on the way may be a link; without, only its last component is checked
 * (a path the operator gave explicitly, e.g. with --allow-outside).
 */
export async function openRegularFile(file: string, within?: string): Promise<OpenedFile> {
  const absolute = path.resolve(file);
  let target = absolute;
  let dir: OpenedDir | undefined;
  if (within !== undefined) {
    const parts = partsBelow(within, absolute);
    if (!parts) throw new UnsafeFileError(`${absolute} is outside ${path.resolve(within)}: refused`);
    dir = await openDirInside(within, parts.slice(0, -1), false);
    target = dir.join(parts[parts.length - 1]!);
  }
  let handle: FileHandle;
  try {
    handle = await open(target, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    throw refusal(absolute, error) ?? error;
  } finally {
    await dir?.close();
  }
  let stat: Stats;
  try {
    stat = await handle.stat();
    if (!stat.isFile()) throw new UnsafeFileError(`${absolute} is ${describeType(stat)}, not a regular file: refused`);
  } catch (error) {
    await handle.close();
    throw error;
  }
  let closed = false;
  return {
    source: absolute,
    stat,
    handle,
    path: PROC_FD ? fdName(handle.fd) : absolute,
    close: async () => {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** At most `maxBytes` of an opened file, read through its descriptor; more is a refusal. */
export async function readBounded(file: OpenedFile, maxBytes: number): Promise<Buffer> {
  if (file.stat.size > maxBytes) {
    throw new UnsafeFileError(
      `${path.basename(file.source)} holds ${file.stat.size} bytes, more than ${maxBytes} bytes`,
    );
  }
  const buffer = Buffer.alloc(maxBytes + 1);
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await file.handle.read(buffer, filled, buffer.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled > maxBytes) throw new UnsafeFileError(`${path.basename(file.source)} holds more than ${maxBytes} bytes`);
  return buffer.subarray(0, filled);
}

/** JSON.parse after checking, on the text itself, that arrays and objects nest at most `maxDepth` deep. */
export function parseBoundedJson(text: string, maxDepth: number): unknown {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw new UnsafeFileError(`nests deeper than ${maxDepth} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return JSON.parse(text);
}

/** SHA-256 of an opened file's first `stat.size` bytes (what it held when opened), stopping when `signal` fires. */
export async function sha256Opened(file: OpenedFile, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(1024 * 1024);
  let position = 0;
  while (position < file.stat.size) {
    signal?.throwIfAborted();
    const { bytesRead } = await file.handle.read(chunk, 0, Math.min(chunk.length, file.stat.size - position), position);
    if (bytesRead === 0) break;
    hash.update(chunk.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest('hex');
}

/** Creates `name` in `dir` with `content`: never through an existing name or a link (O_CREAT | O_EXCL | O_NOFOLLOW). */
export async function createExclusive(dir: OpenedDir, name: string, content: string): Promise<void> {
  const handle = await open(dir.join(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}

/** Whether `name` exists in `dir` in any form (a dangling link too). */
export async function nameTaken(dir: OpenedDir, name: string): Promise<boolean> {
  return lstat(dir.join(name)).then(
    () => true,
    (e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    },
  );
}

/** Moves `from/name` to `to/newName` (rename(2) moves a link itself, never what it points at). */
export async function moveBetween(from: OpenedDir, name: string, to: OpenedDir, newName: string): Promise<void> {
  await rename(from.join(name), to.join(newName));
}
