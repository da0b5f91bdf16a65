/**
 * What /readyz adds for the operator's overview (issue 24), without affecting readiness itself: the free space
 * of the folders the gateway writes to, and the watched folder's state when WATCH_DIR runs under `serve`.
 */
import type { StatsFs } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';

export interface FreeSpace {
  freeBytes: number;
  totalBytes: number;
}

/** statfs of the folder, or of its nearest parent while it is not created yet (TMP_DIR before the first upload). */
async function statfsNear(dir: string): Promise<StatsFs | undefined> {
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    const fs = await statfs(at).catch(() => undefined);
    if (fs || at === path.dirname(at)) return fs;
  }
}

/** Free space per named folder (tmp, spool, blob); a folder that cannot be read is left out. */
export async function freeSpaceOf(folders: Record<string, string | undefined>): Promise<Record<string, FreeSpace>> {
  const out: Record<string, FreeSpace> = {};
  await Promise.all(
    Object.entries(folders).map(async ([name, dir]) => {
      if (!dir) return;
      const fs = await statfsNear(dir);
      if (fs) out[name] = { freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
    }),
  );
  return out;
}

/** The watched folder as /readyz shows it (import/watch.ts answers it; http/ does not import the file doors). */
export interface WatchedFolderStatus {
  /** Files in the folder not taken yet (still being written, or waiting for a worker). */
  waiting: number;
  /** Taken and not finished: converting, or a job of the store not ended yet. */
  inProgress: number;
  /** Left in place after an outage, to be tried again. */
  retrying: number;
  /** Since the gateway started. */
  taken: number;
  delivered: number;
  failed: number;
  lastScanAt: string | undefined;
}

/** Where /readyz finds the watched folder: serve's watcher attaches itself once it runs (import/serve-watch.ts). */
export class WatchedFolderBoard {
  private source: (() => WatchedFolderStatus) | undefined;

  attach(source: () => WatchedFolderStatus): () => void {
    this.source = source;
    return () => {
      if (this.source === source) this.source = undefined;
    };
  }

  status(): WatchedFolderStatus | undefined {
    return this.source?.();
  }
}
