/**
 * The stereo analysis made while a WAV is being written (media/analysis-follow.ts) must be exactly the
 * analysis of the finished file, and must step aside (undefined) whenever it cannot be sure of that.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeWav } from '../../src/media/analysis.js';
import { analyzeWhileWritten } from '../../src/media/analysis-follow.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'follow-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 44-byte PCM WAV header; sizes 0 while writing, as ffmpeg leaves them. */
function header(channels: number, rate: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(dataBytes === 0 ? 0 : 36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

function samples(frames: number, channels: number, seed: number): Buffer {
  const b = Buffer.alloc(frames * channels * 2);
  let state = seed;
  for (let i = 0; i < frames * channels; i++) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    const talk = Math.floor(i / channels / 4000) % 2 === i % channels;
    b.writeInt16LE(talk ? (state % 20_000) - 10_000 : (state % 60) - 30, i * 2);
  }
  return b;
}

/** Writes a WAV the way ffmpeg does: header with zero sizes, samples in uneven pieces over time, sizes last. */
async function writeSlowly(file: string, channels: number, data: Buffer): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.write(header(channels, 8000, 0), 0, 44, 0);
    for (let at = 0, k = 0; at < data.length; k++) {
      const piece = Math.min(data.length - at, 3001 + 7919 * (k % 5)); // not a whole number of frames
      await fh.write(data, at, piece, 44 + at);
      at += piece;
      await sleep(5);
    }
    await fh.write(header(channels, 8000, data.length), 0, 44, 0);
  } finally {
    await fh.close();
  }
}

describe('analyzeWhileWritten', () => {
  it('equals the analysis of the finished file when it follows a file written in pieces', async () => {
    const file = path.join(dir, 'slow.wav');
    const writing = writeSlowly(file, 2, samples(8000 * 6 + 37, 2, 3));
    const followed = analyzeWhileWritten(
      file,
      writing.then(() => true),
    );
    await writing;
    const result = await followed;
    expect(result).toBeDefined();
    expect(result!.frames).toBe(8000 * 6 + 37);
    expect(result!.analysis).toEqual(await analyzeWav(file));
    expect(result!.analysis.silentChannels).toEqual([]);
  });

  it('equals the analysis of a file ffmpeg writes', async () => {
    const file = path.join(dir, 'ffmpeg.wav');
    const child = spawn('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=300:r=48000:d=20', '-f', 'lavfi'],
      ...['-i', 'anoisesrc=r=48000:a=0.1:d=20:seed=5', '-filter_complex', '[0][1]amerge=inputs=2'],
      ...['-ar', '8000', '-c:a', 'pcm_s16le', '-bitexact', '-f', 'wav', '-y', file],
    ]);
    const exited = new Promise<boolean>((resolve) => child.on('close', (code) => resolve(code === 0)));
    const result = await analyzeWhileWritten(file, exited);
    expect(await exited).toBe(true);
    expect(result).toBeDefined();
    expect(result!.frames).toBe(160_000);
    expect(result!.analysis).toEqual(await analyzeWav(file));
  });

  it('steps aside for a mono file, a failed render and an abort', async () => {
    const mono = path.join(dir, 'mono.wav');
    await writeFile(mono, Buffer.concat([header(1, 8000, 1600), samples(800, 1, 1)]));
    expect(await analyzeWhileWritten(mono, Promise.resolve(true))).toBeUndefined();

    const failed = path.join(dir, 'failed.wav');
    const writing = writeSlowly(failed, 2, samples(8000, 2, 2));
    expect(
      await analyzeWhileWritten(
        failed,
        writing.then(() => false),
      ),
    ).toBeUndefined();

    const aborted = path.join(dir, 'aborted.wav');
    const controller = new AbortController();
    const slow = writeSlowly(aborted, 2, samples(16_000, 2, 4));
    const following = analyzeWhileWritten(
      aborted,
      slow.then(() => true),
      controller.signal,
    );
    controller.abort();
    expect(await following).toBeUndefined();
    await slow;
  });

  it('steps aside when the finished header no longer matches what was followed', async () => {
    const file = path.join(dir, 'moved.wav');
    const fh = await open(file, 'w');
    await fh.write(header(2, 8000, 0), 0, 44, 0);
    await fh.write(samples(4000, 2, 9), 0, 16_000, 44);
    const done = (async () => {
      await sleep(60);
      // The final header says 8 kHz mono: not the layout that was measured.
      await fh.write(header(1, 8000, 16_000), 0, 44, 0);
      await fh.close();
      return true;
    })();
    expect(await analyzeWhileWritten(file, done)).toBeUndefined();
  });
});
