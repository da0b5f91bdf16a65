/** Temp files a dead process left in BLOB_DIR/jobs go once they are old; nothing else there is touched. */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sweepStaleTemps } from '../../src/distributed/queue-retention.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'blob-jobs-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

it('removes only temp files older than an hour (a picture being drawn by a live process stays)', async () => {
  const temp = '.0b7c5a4e-1f00-4a2b-9c3d-123456789abc-audio.tmp-4242-deadbeef';
  await writeFile(path.join(root, temp), 'x');
  await writeFile(path.join(root, '.ready-4242'), 'ok');
  await mkdir(path.join(root, '0b7c5a4e-1f00-4a2b-9c3d-123456789abc'));
  expect(await sweepStaleTemps(root)).toBe(0);
  expect(await sweepStaleTemps(root, Date.now() + 2 * 3_600_000)).toBe(1);
  expect((await readdir(root)).sort()).toEqual(['.ready-4242', '0b7c5a4e-1f00-4a2b-9c3d-123456789abc']);
});
