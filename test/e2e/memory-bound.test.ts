/**
 * Memory is bounded per process: a 3 KB MOV declaring 85 million samples in
 * one chunk made ffprobe and ffmpeg take about 2 GB each. Now every child
 * runs under FFMPEG_MAX_MEMORY_MB (RLIMIT_AS) with -max_alloc, and the file
 * is refused with 400 reason 2 saying it needs more memory than allowed.
 * The children's peak resident memory is read from /proc while they run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { movMemoryBomb } from '../helpers/mov-bomb.js';
import { canWatchChildMemory, watchChildMemory } from '../helpers/child-memory.js';
import { recordingForm, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { currentChildLimits } from '../../src/media/process.js';

let t: TestGateway;
let dir: string;
let bomb: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gw-bomb-'));
  bomb = path.join(dir, 'bomb.mov');
  await writeFile(bomb, movMemoryBomb());
  t = await startTestGateway({ CONCURRENCY: '2' });
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const MEMORY_MESSAGE = /needs more memory than allowed .*the limit is 512 MB per process/;
const LIMIT_BYTES = 512 * 1024 * 1024;

describe('the MOV memory bomb', () => {
  it('is 3 KB and declares 85 million samples in one chunk', () => {
    const file = movMemoryBomb();
    expect(file.length).toBeLessThanOrEqual(3 * 1024);
    const count = Buffer.alloc(4);
    count.writeUInt32BE(85_000_000);
    const stsc = file.indexOf(Buffer.from('stsc', 'latin1'));
    // stsc: version/flags, one entry: first chunk 1, 85,000,000 samples per chunk, description 1.
    const entry = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]), count, Buffer.from([0, 0, 0, 1])]);
    expect(file.subarray(stsc + 8, stsc + 24)).toEqual(entry);
  });

  it.each([
    ['/v1/transcode', (f: FormData) => f],
    ['/v1/recordings', (f: FormData) => f],
    [RECORDINGS_PATH, (f: FormData) => f],
  ])('%s: 400 reason 2, "needs more memory than allowed", children stay under the ceiling', async (route) => {
    if (!currentChildLimits().prlimitPath && !process.env.CI) {
      console.warn('skipped: prlimit (util-linux) is not installed, so there is no ceiling to test');
      return;
    }
    const watch = canWatchChildMemory ? watchChildMemory(1) : undefined;
    const res = await fetch(`${t.url}${route}`, { method: 'POST', body: await recordingForm(bomb) });
    const seen = await watch?.stop();
    expect(res.status).toBe(400);
    const body = (await res.json()) as { reason: number; message: string };
    expect(body.reason).toBe(2);
    expect(body.message).toMatch(MEMORY_MESSAGE);
    if (seen) {
      // Before the ceiling: about 2 GB (2,041,560 kB for ffprobe alone, measured with /usr/bin/time -v).
      expect(seen.commands.length).toBeGreaterThan(0);
      expect(seen.peakBytes).toBeGreaterThan(0);
      expect(seen.peakBytes).toBeLessThan(LIMIT_BYTES);
      if (process.env.HARDENING_REPORT) {
        const kb = Math.round(seen.peakBytes / 1024);
        console.log(`bomb ${route}: peak child RSS ${kb} kB (${seen.commands.join(', ')})`);
      }
    }
    expect(await t.settledTempEntries()).toEqual([]);
  });
});
