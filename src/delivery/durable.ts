/**
 * Crash-safe file operations for the spool: write temp → fsync → rename →
 * fsync the folder. After a crash a file is either the old or the new one,
 * never a torn mix, and a rename that returned is on disk.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** fsync a folder so the entries created, renamed or removed in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Some platforms (Windows) cannot open or sync a folder; there is nothing more to do there.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error;
  } finally {
    await handle?.close();
  }
}

/** fsync a file's data (e.g. an upload or ffmpeg output) before the journal refers to it. */
export async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `file` atomically and durably with `data` (mode 0600: the journal may hold a forwarded credential). */
export async function writeFileDurable(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dir);
}

/** Moves a file, across file systems too (copy + unlink); its data is not fsynced (see moveFileDurable). */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
    await unlink(from);
  }
}

/** Moves a file, across file systems too (copy + fsync + unlink), and fsyncs it at its new place. */
export async function moveFileDurable(from: string, to: string): Promise<void> {
  await moveFile(from, to);
  await fsyncFile(to);
}

export const isTempName = (name: string): boolean => /^\..+\.tmp-\d+-[0-9a-f]+$/.test(name);
