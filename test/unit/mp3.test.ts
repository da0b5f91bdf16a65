import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mp3FrameOffsets, readMp3Info, type Mp3Info } from '../../src/media/mp3.js';
import { parseMp3FrameHeader } from '../../src/media/mp3-frame.js';

const run = promisify(execFile);

let dir: string;

async function ffmpeg(args: string[]): Promise<void> {
  await run('ffmpeg', ['-v', 'error', '-y', '-nostdin', ...args]);
}

/** A tone of exactly `samples` samples. */
function toneInput(rate: number, samples: number): string[] {
  return ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${rate}`, '-af', `atrim=end_sample=${samples}`];
}

async function encode(name: string, input: string[], options: string[]): Promise<string> {
  const path = join(dir, name);
  await ffmpeg([...input, '-c:a', 'libmp3lame', ...options, path]);
  return path;
}

/** ffmpeg writing to a pipe cannot seek back to fill in an Info frame. */
async function encodeToPipe(name: string, input: string[], options: string[]): Promise<string> {
  const path = join(dir, name);
  const { stdout } = await run(
    'ffmpeg',
    ['-v', 'error', '-nostdin', ...input, '-c:a', 'libmp3lame', ...options, '-f', 'mp3', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  await writeFile(path, stdout);
  return path;
}

async function mustRead(path: string): Promise<Mp3Info> {
  const info = await readMp3Info(path);
  if (info === null) throw new Error(`not MPEG audio: ${path}`);
  return info;
}

async function collectFrames(path: string, info: Mp3Info): Promise<{ offset: number; bytes: number }[]> {
  const frames: { offset: number; bytes: number }[] = [];
  for await (const frame of mp3FrameOffsets(path, info)) frames.push(frame);
  return frames;
}

function expectContiguous(frames: { offset: number; bytes: number }[], info: Mp3Info): void {
  expect(frames.length).toBe(info.frames);
  expect(frames[0]?.offset).toBe(info.firstFrameOffset);
  let expected = info.firstFrameOffset;
  for (const frame of frames) {
    expect(frame.offset).toBe(expected);
    expected += frame.bytes;
  }
  expect(frames.reduce((sum, frame) => sum + frame.bytes, 0)).toBe(info.audioEnd - info.firstFrameOffset);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mp3-test-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseMp3FrameHeader', () => {
  it('parses an MPEG-1 layer III header', () => {
    expect(parseMp3FrameHeader(Buffer.from([0xff, 0xfb, 0x90, 0x64]), 0)).toEqual({
      version: 1,
      layer: 3,
      bitrateKbps: 128,
      sampleRate: 44_100,
      channels: 2,
      padding: false,
      frameBytes: 417,
      samplesPerFrame: 1152,
    });
  });

  it('parses an MPEG-2.5 mono header with padding at an offset', () => {
    const header = parseMp3FrameHeader(Buffer.from([0x00, 0xff, 0xe3, 0x3a, 0xc0]), 1);
    expect(header).toMatchObject({ version: 2.5, layer: 3, bitrateKbps: 24, sampleRate: 8000, channels: 1 });
    expect(header?.frameBytes).toBe(217);
    expect(header?.samplesPerFrame).toBe(576);
  });

  it('parses MPEG-2 layer III and MPEG-1 layers I and II', () => {
    expect(parseMp3FrameHeader(Buffer.from([0xff, 0xf3, 0x80, 0xc4]), 0)).toMatchObject({
      version: 2,
      layer: 3,
      bitrateKbps: 64,
      sampleRate: 22_050,
      frameBytes: 208,
      samplesPerFrame: 576,
    });
    expect(parseMp3FrameHeader(Buffer.from([0xff, 0xfd, 0x94, 0x04]), 0)).toMatchObject({
      layer: 2,
      bitrateKbps: 160,
      sampleRate: 48_000,
      frameBytes: 480,
      samplesPerFrame: 1152,
    });
    expect(parseMp3FrameHeader(Buffer.from([0xff, 0xff, 0x90, 0x04]), 0)).toMatchObject({
      layer: 1,
      bitrateKbps: 288,
      sampleRate: 44_100,
      frameBytes: 312,
      samplesPerFrame: 384,
    });
  });

  it.each([
    ['bad sync', [0xff, 0x1b, 0x90, 0x64]],
    ['reserved version', [0xff, 0xeb, 0x90, 0x64]],
    ['reserved layer', [0xff, 0xf9, 0x90, 0x64]],
    ['free format', [0xff, 0xfb, 0x00, 0x64]],
    ['bad bitrate', [0xff, 0xfb, 0xf0, 0x64]],
    ['reserved sample rate', [0xff, 0xfb, 0x9c, 0x64]],
    ['reserved emphasis', [0xff, 0xfb, 0x90, 0x66]],
  ])('rejects a %s', (_label, bytes) => {
    expect(parseMp3FrameHeader(Buffer.from(bytes), 0)).toBeNull();
  });

  it('rejects a header cut short by the buffer end', () => {
    expect(parseMp3FrameHeader(Buffer.from([0x00, 0xff, 0xfb, 0x90]), 1)).toBeNull();
    expect(parseMp3FrameHeader(Buffer.from([0xff, 0xfb, 0x90, 0x64]), -1)).toBeNull();
  });
});

describe('readMp3Info', () => {
  it('gives the exact sample count of a CBR MPEG-1 stereo file with ID3v2 and ID3v1 tags', async () => {
    const samples = 100_000;
    const path = await encode(
      'cbr.mp3',
      [...toneInput(44_100, samples), '-ac', '2'],
      ['-b:a', '128k', '-id3v2_version', '3', '-write_id3v1', '1', '-metadata', 'title=t'],
    );
    const info = await mustRead(path);
    const bytes = await readFile(path);
    expect(bytes.toString('latin1', 0, 3)).toBe('ID3');
    expect(info.id3v2Bytes).toBe(10 + bytes.subarray(6, 10).reduce((size, byte) => size * 128 + byte, 0));
    expect(info).toMatchObject({ version: 1, layer: 3, sampleRate: 44_100, channels: 2, samplesPerFrame: 1152 });
    expect(info.hasInfoTag).toBe(true);
    expect(info.encoderDelay).toBeGreaterThan(0);
    expect(info.totalSamples).toBe(samples);
    expect(info.durationSeconds).toBe(samples / 44_100);
    expect(info.audioEnd).toBe(bytes.length - 128);
    expect(bytes.toString('latin1', info.audioEnd, info.audioEnd + 3)).toBe('TAG');
    expect(info.averageBitrateKbps).toBeCloseTo(128, 0);
    expectContiguous(await collectFrames(path, info), info);
  });

  it('gives the exact sample count of a VBR MPEG-2.5 mono 8 kHz file', async () => {
    const samples = 12_345;
    const path = await encode('vbr.mp3', toneInput(8000, samples), ['-q:a', '4']);
    const info = await mustRead(path);
    expect(info).toMatchObject({ version: 2.5, layer: 3, sampleRate: 8000, channels: 1, samplesPerFrame: 576 });
    expect(info.hasInfoTag).toBe(true);
    expect(info.totalSamples).toBe(samples);
    expect(info.audioEnd).toBe((await stat(path)).size);
    expectContiguous(await collectFrames(path, info), info);
  });

  it('gives the exact sample count of an MPEG-2 file', async () => {
    const samples = 33_333;
    const path = await encode('mpeg2.mp3', toneInput(16_000, samples), ['-b:a', '32k']);
    const info = await mustRead(path);
    expect(info).toMatchObject({ version: 2, samplesPerFrame: 576, channels: 1 });
    expect(info.totalSamples).toBe(samples);
  });

  it('parses a file written to a pipe (no Info frame) with no delay', async () => {
    const samples = 100_000;
    const input = [...toneInput(44_100, samples), '-ac', '2'];
    const piped = await mustRead(await encodeToPipe('piped.mp3', input, ['-b:a', '128k']));
    const seekable = await mustRead(await encode('seekable.mp3', input, ['-b:a', '128k']));
    expect(piped.hasInfoTag).toBe(false);
    expect(piped.encoderDelay).toBe(0);
    expect(piped.encoderPadding).toBe(0);
    expect(piped.frames).toBe(seekable.frames);
    expect(piped.totalSamples).toBe(piped.frames * 1152);
    expect(piped.totalSamples).toBeGreaterThanOrEqual(samples);
  });

  it('skips stray sync words and junk before and between frames', async () => {
    const raw = await encodeToPipe('raw.mp3', toneInput(8000, 20_000), ['-b:a', '16k', '-id3v2_version', '0']);
    const clean = await mustRead(raw);
    const frames = await collectFrames(raw, clean);
    const bytes = await readFile(raw);
    const strayHeader = Buffer.from([0xff, 0xfb, 0x90, 0x64]);
    const junk = Buffer.concat([Buffer.from('junk '), strayHeader, Buffer.from(' more junk')]);
    const cut = frames[10]?.offset ?? 0;
    const dirty = join(dir, 'dirty.mp3');
    await writeFile(dirty, Buffer.concat([junk, bytes.subarray(0, cut), junk, bytes.subarray(cut)]));

    const info = await mustRead(dirty);
    expect(info.firstFrameOffset).toBe(junk.length);
    expect(info.frames).toBe(clean.frames);
    expect(info.totalSamples).toBe(clean.totalSamples);
    expect((await collectFrames(dirty, info)).length).toBe(clean.frames);
  });

  it('treats a VBRI frame as an info frame without delay', async () => {
    const raw = await encodeToPipe(
      'vbri-source.mp3',
      [...toneInput(44_100, 50_000), '-ac', '2'],
      ['-b:a', '128k', '-id3v2_version', '0'],
    );
    const source = await mustRead(raw);
    const bytes = await readFile(raw);
    const header = parseMp3FrameHeader(bytes, 0);
    if (header === null) throw new Error('no frame at 0');
    const vbri = Buffer.alloc(header.frameBytes);
    bytes.copy(vbri, 0, 0, 4);
    vbri.write('VBRI', 36, 'latin1');
    const path = join(dir, 'vbri.mp3');
    await writeFile(path, Buffer.concat([vbri, bytes]));

    const info = await mustRead(path);
    expect(info.hasInfoTag).toBe(true);
    expect(info.firstFrameOffset).toBe(header.frameBytes);
    expect(info.frames).toBe(source.frames);
    expect(info.encoderDelay).toBe(0);
  });

  it('returns null for WAV, PNG, text, empty and lone-sync files', async () => {
    const wav = join(dir, 'tone.wav');
    await ffmpeg([...toneInput(8000, 8000), '-c:a', 'pcm_s16le', wav]);
    const wavMp3 = join(dir, 'mp3-in-wav.wav');
    await ffmpeg([...toneInput(8000, 8000), '-c:a', 'libmp3lame', '-f', 'wav', wavMp3]);
    const png = join(dir, 'image.png');
    await ffmpeg(['-f', 'lavfi', '-i', 'color=c=red:s=64x64', '-frames:v', '1', png]);
    const text = join(dir, 'notes.txt');
    await writeFile(text, 'hello, this is not audio\n'.repeat(100));
    const empty = join(dir, 'empty.mp3');
    await writeFile(empty, Buffer.alloc(0));
    const lone = join(dir, 'lone.mp3');
    const loneBytes = Buffer.alloc(4096, 0x20);
    Buffer.from([0xff, 0xfb, 0x90, 0x64]).copy(loneBytes, 100);
    await writeFile(lone, loneBytes);

    for (const path of [wav, wavMp3, png, text, empty, lone]) {
      expect(await readMp3Info(path), path).toBeNull();
    }
  });
});
