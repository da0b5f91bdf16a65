/**
 * Crash leftovers: each request works in TMP_DIR/job-XXXXXX, removed when it
 * ends. A `kill -9` (or a power cut) during an upload or a transcode leaves
 * that folder behind. At startup no request is live in this process, so
 * every job-* folder in TMP_DIR is an orphan and is removed (TMP_DIR belongs
 * to one gateway process; give each instance its own).
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** Removes the orphan job-* folders; resolves to how many there were. */
export async function sweepOrphanWorkFolders(tmpDir: string, live: ReadonlySet<string> = new Set()): Promise<number> {
  let removed = 0;
  for (const entry of await readdir(tmpDir, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory() || !/^job-[A-Za-z0-9]+$/.test(entry.name) || live.has(entry.name)) continue;
    await rm(path.join(tmpDir, entry.name), { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}
