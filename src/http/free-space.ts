/** Free space of the folders the gateway writes to, for the operator's overview (GET /metrics/status). */
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
