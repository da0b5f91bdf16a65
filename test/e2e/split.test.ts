/**
 * Long recordings against a small MAX_PART_BYTES (so tests stay fast):
 * exact split, silence preference, start shifts, MP3, reject/compress
 * policies, and the duration and upload limits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { readWavInfo } from '../../src/media/wav.js';
import { mp3FrameOffsets, readMp3Info } from '../../src/media/mp3.js';
import { parseIsoDuration } from '../../src/imagicle/duration.js';
import { shiftInstant } from '../../src/imagicle/instant.js';

const run = promisify(execFile);
const MB = 1024 * 1024;
let dir: string;

/** 150 s of 8 kHz tone with 0.5 s of silence every 10 s (at 9.5–10 s, 19.5–20 s, ...). */
let gappy: string;
/** 150 s of uninterrupted tone: no silence to cut in. */
let continuous: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'split-'));
  gappy = path.join(dir, 'gappy.flac');
  continuous = path.join(dir, 'continuous.flac');
  await Promise.all([
    run('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'aevalsrc=0.5*sin(2*PI*440*t)*lt(mod(t\\,10)\\,9.5):s=8000:d=150',
      '-c:a',
      'flac',
      '-y',
      gappy,
    ]),
    run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=440:r=8000:d=150', '-c:a', 'flac', '-y', continuous]),
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function post(t: TestGateway, file: string, metadata: unknown = SAMPLE_METADATA, route = RECORDINGS_PATH) {
  const res = await fetch(`${t.url}${route}`, { method: 'POST', body: await recordingForm(file, metadata) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function transcodeWhole(t: TestGateway, file: string): Promise<Buffer> {
  const form = new FormData();
  form.append('attachment', new Blob([await readFile(file)]), path.basename(file));
  const res = await fetch(`${t.url}/v1/transcode`, { method: 'POST', body: form });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

interface PartInfo {
  part: number;
  of: number;
  id: string;
  startDateTime: string;
  duration: string;
  bytes: number;
  delivered: boolean;
}

async function wavData(file: string): Promise<Buffer> {
  const info = (await readWavInfo(file))!;
  return (await readFile(file)).subarray(info.dataOffset, info.dataOffset + info.dataBytes);
}

describe('OVERSIZE=split, WAV', () => {
  let t: TestGateway;
  beforeAll(async () => {
    // RECONCILE=off: a 500 on part 2 stays the caller's answer (with reads it is asked about and sent again).
    t = await startTestGateway({ MAX_PART_BYTES: String(MB), SPLIT_SILENCE_WINDOW_SECONDS: '10', RECONCILE: 'off' });
  });
  afterAll(async () => t?.close());

  it('delivers every sample exactly once, in parts under the limit, with exact starts and durations', async () => {
    const whole = await transcodeWhole(t, gappy);
    const wholePath = path.join(dir, 'whole.wav');
    await writeFile(wholePath, whole);
    const { status, body } = await post(t, gappy);
    expect(status, JSON.stringify(body)).toBe(201);
    const parts = body.parts as PartInfo[];
    expect(parts.length).toBe(3);
    const stored = t.emulator.store.list().slice(-3);

    let offset = 0;
    const datas: Buffer[] = [];
    for (const [i, p] of parts.entries()) {
      const rec = stored[i]!;
      expect(rec.id).toBe(p.id);
      expect(p.delivered).toBe(true);
      expect(rec.bytes).toBeLessThanOrEqual(MB);
      expect(p.bytes).toBe(rec.bytes);
      // Start = original start + exact duration of the parts before.
      expect(rec.metadata.startDateTime).toBe(shiftInstant(SAMPLE_METADATA.startDateTime, offset));
      expect(rec.metadata.notes).toBe(`${SAMPLE_METADATA.notes} (part ${i + 1}/3)`);
      expect(rec.metadata.pbxCallId).toBe(SAMPLE_METADATA.pbxCallId);
      const file = t.emulator.store.audioPath(rec.id)!;
      const info = (await readWavInfo(file))!;
      expect(Math.abs(parseIsoDuration(rec.metadata.duration as string)! - info.frames / info.sampleRate)).toBeLessThan(
        0.0005,
      );
      offset += info.frames / info.sampleRate;
      datas.push(await wavData(file));
    }
    // Exact coverage: the parts' samples, end to end, are the unsplit output's samples.
    expect(Buffer.concat(datas).equals(await wavData(wholePath))).toBe(true);
    // Same precision as the source's startDateTime (7 digits).
    expect(stored[1]!.metadata.startDateTime).toMatch(/\.\d{7}Z$/);
  });

  it('cuts in a silence before the limit', async () => {
    const before = t.emulator.store.list().length;
    const { status, body } = await post(t, gappy, SAMPLE_METADATA, '/v1/recordings');
    expect(status).toBe(201);
    expect((body.oversize as { action: string }).action).toBe('split');
    const stored = t.emulator.store.list().slice(before);
    // Each cut falls where the tone is silent: 9.5–10 s in every 10 s.
    let offset = 0;
    for (const rec of stored.slice(0, -1)) {
      offset += rec.format.durationSeconds;
      expect(offset % 10).toBeGreaterThan(9.5);
    }
  });

  it('falls back to the last frame that fits when there is no silence', async () => {
    const before = t.emulator.store.list().length;
    const { status } = await post(t, continuous);
    expect(status).toBe(201);
    const stored = t.emulator.store.list().slice(before);
    expect(stored.length).toBe(3);
    // 44-byte header + whole 2-byte frames: as close to the limit as possible.
    expect(stored[0]!.bytes).toBeGreaterThan(MB - 4);
    expect(stored[0]!.bytes).toBeLessThanOrEqual(MB);
  });

  it('says which parts were delivered when one fails, and stops there', async () => {
    const before = t.emulator.store.list().length;
    t.emulator.faults.add([{ delayMs: 0 }, { status: 500, body: { reason: 0, message: 'import failed' } }]);
    const { status, body } = await post(t, gappy);
    expect(status).toBe(500);
    expect(body.message).toMatch(/Part 2 of 3 was not delivered.*import failed.*Parts 1 were delivered/);
    const parts = body.parts as PartInfo[];
    expect(parts.map((p) => p.delivered)).toEqual([true, false, false]);
    expect(t.emulator.store.list().length).toBe(before + 1);
  });

  it('leaves no temp files', async () => {
    expect(await t.settledTempEntries()).toEqual([]);
  });
});

describe('OVERSIZE=split, MP3', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      MAX_PART_BYTES: String(256 * 1024),
      OUTPUT_FORMAT: 'mp3',
      MP3_BITRATE: '32',
      SPLIT_SILENCE_WINDOW_SECONDS: '10',
    });
  });
  afterAll(async () => t?.close());

  it('cuts on frame boundaries; the parts hold every frame once, in a silence', async () => {
    const whole = path.join(dir, 'whole.mp3');
    await writeFile(whole, await transcodeWhole(t, gappy));
    const wholeInfo = (await readMp3Info(whole))!;
    const frames: Buffer[] = [];
    const wholeBytes = await readFile(whole);
    for await (const f of mp3FrameOffsets(whole, wholeInfo))
      frames.push(wholeBytes.subarray(f.offset, f.offset + f.bytes));

    const before = t.emulator.store.list().length;
    const { status, body } = await post(t, gappy);
    expect(status, JSON.stringify(body)).toBe(201);
    const stored = t.emulator.store.list().slice(before);
    expect(stored.length).toBe((body.parts as PartInfo[]).length);
    expect(stored.length).toBeGreaterThanOrEqual(2);
    const partBytes: Buffer[] = [];
    let offset = 0;
    for (const [i, rec] of stored.entries()) {
      expect(rec.format.codec).toBe('mp3');
      expect(rec.bytes).toBeLessThanOrEqual(256 * 1024);
      expect(rec.metadata.startDateTime).toBe(shiftInstant(SAMPLE_METADATA.startDateTime, offset));
      offset += rec.format.durationSeconds;
      partBytes.push(await readFile(t.emulator.store.audioPath(rec.id)!));
      if (i < stored.length - 1) {
        // The cut is in a silent stretch (the decoder delay shifts it by a few ms).
        expect(offset % 10).toBeGreaterThan(9.3);
      }
    }
    expect(Buffer.concat(partBytes).equals(Buffer.concat(frames))).toBe(true);
  });
});

describe('OVERSIZE=reject and compress', () => {
  it('reject: 413 reason 2 naming the size and the limit', async () => {
    const t = await startTestGateway({ MAX_PART_BYTES: String(MB), OVERSIZE: 'reject' });
    try {
      const before = t.emulator.stats.snapshot().requests;
      const { status, body } = await post(t, gappy);
      expect(status).toBe(413);
      expect(body.reason).toBe(2);
      expect(body.message).toMatch(/2400044 bytes.*1048576 bytes/);
      expect(t.emulator.stats.snapshot().requests).toBe(before);
    } finally {
      await t.close();
    }
  });

  it('compress: the first format of COMPRESS_ORDER that fits (A-law)', async () => {
    const t = await startTestGateway({
      MAX_PART_BYTES: String(Math.round(1.3 * MB)),
      OVERSIZE: 'compress',
      COMPRESS_ORDER: 'alaw,mp3',
    });
    try {
      const { status, body } = await post(t, gappy, SAMPLE_METADATA, '/v1/recordings');
      expect(status).toBe(201);
      expect((body.output as { codec: string }).codec).toBe('pcm_alaw');
      expect((body.oversize as { action: string }).action).toBe('compressed');
      expect(t.emulator.store.list().at(-1)!.format.codec).toBe('pcm_alaw');
    } finally {
      await t.close();
    }
  });

  it('compress: skips a format that does not fit (MP3), and splits what still does not fit', async () => {
    const t = await startTestGateway({ MAX_PART_BYTES: String(MB), OVERSIZE: 'compress', COMPRESS_ORDER: 'alaw,mp3' });
    try {
      const first = await post(t, gappy, SAMPLE_METADATA, '/v1/recordings');
      expect(first.status).toBe(201);
      expect((first.body.output as { codec: string }).codec).toBe('mp3');
      expect((first.body.parts as unknown[]).length).toBe(1);
    } finally {
      await t.close();
    }
    const t2 = await startTestGateway({ MAX_PART_BYTES: String(MB), OVERSIZE: 'compress', COMPRESS_ORDER: 'pcm8' });
    try {
      const second = await post(t2, gappy, SAMPLE_METADATA, '/v1/recordings');
      expect(second.status).toBe(201);
      expect((second.body.oversize as { action: string }).action).toBe('compressed-and-split');
      expect((second.body.parts as unknown[]).length).toBe(2);
    } finally {
      await t2.close();
    }
  });
});

describe('input limits', () => {
  it('MAX_DURATION_SECONDS is enforced from the probe', async () => {
    const t = await startTestGateway({ MAX_DURATION_SECONDS: '60' });
    try {
      const started = Date.now();
      const { status, body } = await post(t, gappy);
      expect(status).toBe(400);
      expect(body.reason).toBe(2);
      expect(body.message).toMatch(/150\.0 s, more than the limit of 60 seconds/);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await t.close();
    }
  });

  it('a header that lies about the length is caught while decoding', async () => {
    // 20 minutes of silence whose STREAMINFO claims 5 seconds.
    const liar = path.join(dir, 'liar.flac');
    await run('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'anullsrc=r=8000:cl=mono',
      '-t',
      '1200',
      '-c:a',
      'flac',
      '-y',
      liar,
    ]);
    const fh = await open(liar, 'r+');
    const streaminfo = Buffer.alloc(34);
    await fh.read(streaminfo, 0, 34, 8);
    streaminfo[13] = streaminfo[13]! & 0xf0;
    streaminfo.writeUInt32BE(5 * 8000, 14);
    await fh.write(streaminfo, 0, 34, 8);
    await fh.close();
    const t = await startTestGateway();
    try {
      const { status, body } = await post(t, liar);
      expect(status).toBe(400);
      expect(body.reason).toBe(2);
      expect(body.message).toMatch(/far more than the 5\.0 s its header declares/);
      expect(await t.settledTempEntries()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('MAX_UPLOAD_BYTES is enforced while streaming: 413, no temp file', async () => {
    const t = await startTestGateway({ MAX_UPLOAD_BYTES: '100000' });
    try {
      const big = path.join(dir, 'big.wav');
      await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=r=8000:d=20', '-y', big]);
      expect((await stat(big)).size).toBeGreaterThan(100000);
      // Chunked (no Content-Length), so the limit has to be enforced on the stream itself.
      const encoded = new Response(await recordingForm(big));
      const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
        method: 'POST',
        body: encoded.body,
        duplex: 'half',
        headers: { 'content-type': encoded.headers.get('content-type')! },
      } as RequestInit);
      expect(res.status).toBe(413);
      expect(((await res.json()) as { reason: number }).reason).toBe(2);
      expect(await t.settledTempEntries()).toEqual([]);
      // And with a Content-Length over the limit, before any byte is stored.
      const res2 = await fetch(`${t.url}${RECORDINGS_PATH}`, { method: 'POST', body: await recordingForm(big) });
      expect(res2.status).toBe(413);
    } finally {
      await t.close();
    }
  });
});
