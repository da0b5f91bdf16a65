import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile, appendFile, open, stat, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWavInfo, wavDurationSeconds, type WavInfo } from '../../src/media/wav.js';
import { plainWavHeader, repairWavSizes, writeWavSlice } from '../../src/media/wav-write.js';
import { quietestFrame } from '../../src/media/wav-quiet.js';

const run = promisify(execFile);
const SAMPLES = 12_345;
const RATE = 8000;

let dir: string;

async function ffmpeg(args: string[]): Promise<void> {
  await run('ffmpeg', ['-v', 'error', '-y', '-nostdin', ...args]);
}

async function probeDuration(path: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', path]);
  return Number(stdout.trim());
}

/** A 440 Hz tone of exactly SAMPLES samples at 8 kHz in the given codec. */
async function makeTone(name: string, codec: string, extra: string[] = []): Promise<string> {
  const path = join(dir, name);
  await ffmpeg([
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=440:sample_rate=${RATE}`,
    '-af',
    `atrim=end_sample=${SAMPLES}`,
    '-c:a',
    codec,
    ...extra,
    path,
  ]);
  return path;
}

async function mustRead(path: string): Promise<WavInfo> {
  const info = await readWavInfo(path);
  if (info === null) throw new Error(`not a WAV: ${path}`);
  return info;
}

async function sampleBytes(path: string): Promise<Buffer> {
  const info = await mustRead(path);
  return (await readFile(path)).subarray(info.dataOffset, info.dataOffset + info.dataBytes);
}

async function overwriteUInt32(path: string, position: number, value: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32LE(value);
    await handle.write(bytes, 0, 4, position);
  } finally {
    await handle.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wav-test-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readWavInfo', () => {
  it('reads a PCM s16le mono 8 kHz file exactly', async () => {
    const path = await makeTone('s16.wav', 'pcm_s16le', ['-fflags', '+bitexact']);
    const info = await mustRead(path);
    expect(info).toMatchObject({
      formatTag: 1,
      effectiveFormatTag: 1,
      channels: 1,
      sampleRate: RATE,
      bitsPerSample: 16,
      blockAlign: 2,
      byteRate: 16_000,
      dataOffset: 44,
      declaredDataSize: SAMPLES * 2,
      dataBytes: SAMPLES * 2,
      frames: SAMPLES,
      fileSize: 44 + SAMPLES * 2,
      declaredRiffSize: 36 + SAMPLES * 2,
      sizesConsistent: true,
      trailingBytes: 0,
      plainHeader: true,
    });
    expect(wavDurationSeconds(info)).toBe(SAMPLES / RATE);
    expect(await probeDuration(path)).toBeCloseTo(SAMPLES / RATE, 5);
  });

  it('reads 8-bit PCM with an odd data size and its pad byte', async () => {
    const info = await mustRead(await makeTone('u8.wav', 'pcm_u8'));
    expect(info).toMatchObject({ formatTag: 1, bitsPerSample: 8, blockAlign: 1, frames: SAMPLES, dataBytes: SAMPLES });
    expect(info.sizesConsistent).toBe(true);
    expect(info.trailingBytes).toBe(0);
  });

  it.each([
    ['pcm_alaw', 6],
    ['pcm_mulaw', 7],
  ])('reads %s with its format tag and fact chunk', async (codec, tag) => {
    const info = await mustRead(await makeTone(`${codec}.wav`, codec));
    expect(info).toMatchObject({ formatTag: tag, effectiveFormatTag: tag, plainHeader: true, blockAlign: 1 });
    expect(info.frames).toBe(SAMPLES);
    expect(info.sizesConsistent).toBe(true);
  });

  it('reports the SubFormat tag of WAVE_FORMAT_EXTENSIBLE (24-bit)', async () => {
    const info = await mustRead(await makeTone('s24.wav', 'pcm_s24le'));
    expect(info.formatTag).toBe(0xfffe);
    expect(info.effectiveFormatTag).toBe(1);
    expect(info.plainHeader).toBe(false);
    expect(info.blockAlign).toBe(3);
    expect(info.frames).toBe(SAMPLES);
  });

  it('walks past a LIST chunk before the data', async () => {
    const info = await mustRead(await makeTone('list.wav', 'pcm_s16le', ['-metadata', 'title=x']));
    expect(info.dataOffset).toBeGreaterThan(44);
    expect(info.frames).toBe(SAMPLES);
    expect(info.sizesConsistent).toBe(true);
  });

  it('counts a LIST chunk after the data as trailing bytes', async () => {
    const path = join(dir, 'trailing-list.wav');
    await copyFile(await makeTone('plain-for-trailing.wav', 'pcm_s16le', ['-fflags', '+bitexact']), path);
    // LIST, 12 body bytes: INFO, then an empty INAM sub-chunk.
    const list = Buffer.from('LIST\x0c\x00\x00\x00INFOINAM\x00\x00\x00\x00', 'latin1');
    await appendFile(path, list);
    await overwriteUInt32(path, 4, (await stat(path)).size - 8);
    const info = await mustRead(path);
    expect(info.trailingBytes).toBe(list.length);
    expect(info.frames).toBe(SAMPLES);
    expect(info.sizesConsistent).toBe(true);

    // A wrong RIFF size alone is repaired without dropping the LIST chunk.
    await overwriteUInt32(path, 4, 0);
    const repaired = await repairWavSizes(path, await mustRead(path));
    expect(repaired.sizesConsistent).toBe(true);
    expect(repaired.fileSize).toBe(info.fileSize);
    expect(repaired.trailingBytes).toBe(list.length);
  });

  it.each([
    ['zero', 0],
    ['0xFFFFFFFF', 0xffffffff],
    ['too large', 0x7fffffff],
  ])('recovers the real data size when the size fields are %s, and repairs them', async (label, bogus) => {
    const path = join(dir, `bogus-${label}.wav`);
    await copyFile(await makeTone(`source-${label}.wav`, 'pcm_s16le', ['-metadata', 'title=x']), path);
    const original = await mustRead(path);
    await overwriteUInt32(path, 4, bogus);
    await overwriteUInt32(path, original.dataOffset - 4, bogus);

    const broken = await mustRead(path);
    expect(broken.declaredRiffSize).toBe(bogus);
    expect(broken.declaredDataSize).toBe(bogus);
    expect(broken.dataBytes).toBe(SAMPLES * 2);
    expect(broken.frames).toBe(SAMPLES);
    expect(broken.sizesConsistent).toBe(false);

    const repaired = await repairWavSizes(path, broken);
    expect(repaired.sizesConsistent).toBe(true);
    expect(repaired.declaredDataSize).toBe(SAMPLES * 2);
    expect(repaired.fileSize).toBe(original.fileSize);
    expect(await probeDuration(path)).toBeCloseTo(SAMPLES / RATE, 5);
  });

  it('truncates a partial frame left after a bogus data size', async () => {
    const path = join(dir, 'ragged.wav');
    await copyFile(await makeTone('source-ragged.wav', 'pcm_s16le', ['-fflags', '+bitexact']), path);
    const original = await mustRead(path);
    await appendFile(path, Buffer.from([0x42]));
    await overwriteUInt32(path, 4, 0xffffffff);
    await overwriteUInt32(path, original.dataOffset - 4, 0xffffffff);

    const broken = await mustRead(path);
    expect(broken.frames).toBe(SAMPLES);
    const repaired = await repairWavSizes(path, broken);
    expect(repaired.sizesConsistent).toBe(true);
    expect(repaired.fileSize).toBe(original.fileSize);
    expect(await sampleBytes(path)).toEqual(await sampleBytes(join(dir, 'source-ragged.wav')));
  });

  it('truncates a declared data size that is not whole frames', async () => {
    const path = join(dir, 'odd-declared.wav');
    await copyFile(await makeTone('source-odd.wav', 'pcm_s16le', ['-fflags', '+bitexact']), path);
    await appendFile(path, Buffer.from([0x42]));
    await overwriteUInt32(path, 40, SAMPLES * 2 + 1);
    await overwriteUInt32(path, 4, (await stat(path)).size - 8);

    const broken = await mustRead(path);
    expect(broken.dataBytes).toBe(SAMPLES * 2);
    expect(broken.sizesConsistent).toBe(false);
    const repaired = await repairWavSizes(path, broken);
    expect(repaired.sizesConsistent).toBe(true);
    expect(repaired.fileSize).toBe(44 + SAMPLES * 2);
  });

  it('returns null for files that are not RIFF/WAVE, without throwing', async () => {
    const text = join(dir, 'notes.txt');
    await writeFile(text, 'RIFF? no, just some text that is long enough to have a header\n'.repeat(10));
    const empty = join(dir, 'empty.wav');
    await writeFile(empty, Buffer.alloc(0));
    const mp3 = join(dir, 'tone.mp3');
    await ffmpeg(['-f', 'lavfi', '-i', 'sine=sample_rate=8000:duration=0.5', '-c:a', 'libmp3lame', mp3]);
    const truncated = join(dir, 'truncated.wav');
    await writeFile(truncated, (await readFile(await makeTone('whole.wav', 'pcm_s16le'))).subarray(0, 30));
    const rf64 = join(dir, 'rf64.wav');
    const rf64Bytes = await readFile(join(dir, 'whole.wav'));
    rf64Bytes.write('RF64', 0, 'latin1');
    await writeFile(rf64, rf64Bytes);

    for (const path of [text, empty, mp3, truncated, rf64]) {
      expect(await readWavInfo(path), path).toBeNull();
    }
  });
});

describe('plainWavHeader', () => {
  it('writes a 44-byte header for PCM', () => {
    const header = plainWavHeader({ formatTag: 1, channels: 2, sampleRate: 8000, bitsPerSample: 16 }, 400);
    expect(header.length).toBe(44);
    expect(header.toString('latin1', 0, 4)).toBe('RIFF');
    expect(header.readUInt32LE(4)).toBe(36 + 400);
    expect(header.readUInt32LE(16)).toBe(16);
    expect(header.readUInt32LE(28)).toBe(32_000);
    expect(header.readUInt16LE(32)).toBe(4);
    expect(header.readUInt32LE(40)).toBe(400);
  });

  it('writes an 18-byte fmt chunk and a fact chunk for A-law, counting the pad byte', () => {
    const header = plainWavHeader({ formatTag: 6, channels: 1, sampleRate: 8000, bitsPerSample: 8 }, 101);
    expect(header.length).toBe(58);
    expect(header.readUInt32LE(4)).toBe(50 + 101 + 1);
    expect(header.readUInt32LE(16)).toBe(18);
    expect(header.readUInt16LE(36)).toBe(0);
    expect(header.toString('latin1', 38, 42)).toBe('fact');
    expect(header.readUInt32LE(46)).toBe(101);
    expect(header.toString('latin1', 50, 54)).toBe('data');
    expect(header.readUInt32LE(54)).toBe(101);
  });
});

describe('writeWavSlice', () => {
  it.each([
    ['pcm_s16le', 'slice-s16.wav'],
    ['pcm_alaw', 'slice-alaw.wav'],
    ['pcm_u8', 'slice-u8.wav'],
    ['pcm_s24le', 'slice-s24.wav'],
  ])('cuts %s into slices whose samples concatenate to the original', async (codec, name) => {
    const source = await makeTone(name, codec);
    const info = await mustRead(source);
    const bounds = [0, 5001, 10_000, SAMPLES];
    const parts: Buffer[] = [];
    for (let index = 0; index + 1 < bounds.length; index += 1) {
      const start = bounds[index] ?? 0;
      const count = (bounds[index + 1] ?? 0) - start;
      const dest = join(dir, `${name}.part${index}.wav`);
      await writeWavSlice(source, info, start, count, dest);
      const part = await mustRead(dest);
      expect(part.plainHeader).toBe(true);
      expect(part.sizesConsistent).toBe(true);
      expect(part.frames).toBe(count);
      expect(await probeDuration(dest)).toBeCloseTo(count / RATE, 5);
      parts.push(await sampleBytes(dest));
    }
    expect(Buffer.concat(parts).equals(await sampleBytes(source))).toBe(true);
  });

  it('refuses a range outside the data', async () => {
    const source = await makeTone('slice-range.wav', 'pcm_s16le');
    const info = await mustRead(source);
    await expect(writeWavSlice(source, info, SAMPLES - 10, 11, join(dir, 'never.wav'))).rejects.toThrow(RangeError);
  });
});

describe('quietestFrame', () => {
  // A tone with digital silence from 1.00 s to 1.25 s (frames 8000..10000).
  const silenceStart = 8000;
  const silenceEnd = 10_000;

  it.each(['pcm_s16le', 'pcm_u8', 'pcm_alaw', 'pcm_mulaw'])('finds the silent gap in %s', async (codec) => {
    const path = join(dir, `gap-${codec}.wav`);
    await ffmpeg([
      '-f',
      'lavfi',
      '-i',
      `aevalsrc='if(between(t,1,1.25),0,0.5*sin(2*PI*440*t))':s=${RATE}:d=2`,
      '-c:a',
      codec,
      path,
    ]);
    const info = await mustRead(path);
    for (const from of [0, 123]) {
      const { frame, rms } = await quietestFrame(path, info, from, info.frames);
      expect(frame).toBeGreaterThanOrEqual(silenceStart);
      expect(frame + 160).toBeLessThanOrEqual(silenceEnd);
      expect((frame - from) % 160).toBe(0);
      // A-law has no zero code: its silence decodes to +-8/32768.
      expect(rms).toBeLessThan(0.001);
    }
    const loud = await quietestFrame(path, info, 0, 4000, 50);
    expect(loud.rms).toBeGreaterThan(0.3);
  });
});
