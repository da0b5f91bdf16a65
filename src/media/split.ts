/**
 * Cutting a long output into parts that each fit Imagicle's size limit,
 * without re-encoding: WAV on sample frames, MP3 on frame boundaries. A cut
 * prefers the quietest stretch in a window before the limit, when it is
 * silent enough, and otherwise falls at the last frame that fits.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { readWavInfo, type WavInfo } from './wav.js';
import { plainFormatOf, plainWavHeader, writeWavSlice } from './wav-write.js';
import { quietestFrame } from './wav-quiet.js';
import { mp3FrameOffsets, type Mp3Info } from './mp3.js';

export interface PartFile {
  /** 1-based. */
  index: number;
  path: string;
  bytes: number;
  /** Sample frames in this part (MP3: decoded samples per channel of its frames). */
  samples: number;
  /** Sample frames of all parts before this one. */
  startSample: number;
  sampleRate: number;
  durationSeconds: number;
}

export interface SplitOptions {
  maxPartBytes: number;
  /** How far before the limit a silence is looked for. */
  silenceWindowSeconds: number;
  /** RMS (full scale = 1) under which a stretch counts as silence; default −45 dBFS. */
  silenceThreshold?: number;
  /** Folder for the part files. */
  workDir: string;
  /** Base name for part files. */
  stem?: string;
}

const DEFAULT_SILENCE_THRESHOLD = 10 ** (-45 / 20);
/** MP3 frames decoded before a window so the window itself decodes cleanly. */
const WARMUP_FRAMES = 4;
/** Length of the stretch whose energy is measured when looking for a silence. */
const SILENCE_PROBE_MS = 200;

/** Where each WAV part ends, as frame indices (exclusive), chosen with the silence preference. */
async function wavCutPoints(file: string, info: WavInfo, options: SplitOptions): Promise<number[]> {
  const format = plainFormatOf(info);
  if (!format) throw new Error('only PCM, A-law and u-law WAV can be split');
  const headerBytes = plainWavHeader(format, 0).length;
  const maxFrames = Math.floor((options.maxPartBytes - headerBytes - 1) / info.blockAlign);
  if (maxFrames < info.sampleRate) throw new RangeError(`MAX_PART_BYTES is too small to hold one second of audio`);
  const windowFrames = Math.min(Math.round(options.silenceWindowSeconds * info.sampleRate), Math.floor(maxFrames / 2));
  const threshold = options.silenceThreshold ?? DEFAULT_SILENCE_THRESHOLD;
  const probeFrames = Math.round((SILENCE_PROBE_MS / 1000) * info.sampleRate);
  const cuts: number[] = [];
  let start = 0;
  while (info.frames - start > maxFrames) {
    const limit = start + maxFrames;
    let cut = limit;
    if (windowFrames > probeFrames) {
      const quiet = await quietestFrame(file, info, limit - windowFrames, limit, SILENCE_PROBE_MS);
      // Cut in the middle of the silent stretch, so both parts start and end quietly.
      if (quiet.rms <= threshold) cut = Math.min(limit, quiet.frame + Math.floor(probeFrames / 2));
    }
    cuts.push(cut);
    start = cut;
  }
  cuts.push(info.frames);
  return cuts;
}

export async function splitWav(file: string, info: WavInfo, options: SplitOptions): Promise<PartFile[]> {
  const cuts = await wavCutPoints(file, info, options);
  const parts: PartFile[] = [];
  let start = 0;
  for (const [i, end] of cuts.entries()) {
    const partPath = path.join(options.workDir, `${options.stem ?? 'part'}-${i + 1}.wav`);
    await writeWavSlice(file, info, start, end - start, partPath);
    const written = await readWavInfo(partPath);
    if (!written || written.frames !== end - start) throw new Error(`part ${i + 1} was not written whole`);
    parts.push({
      index: i + 1,
      path: partPath,
      bytes: written.fileSize,
      samples: end - start,
      startSample: start,
      sampleRate: info.sampleRate,
      durationSeconds: (end - start) / info.sampleRate,
    });
    start = end;
  }
  return parts;
}

interface FrameRef {
  offset: number;
  bytes: number;
}

/** Loudness of each MP3 frame in a range, from a decode of just those frames; supplied by the caller (needs ffmpeg). */
export type FrameLoudness = (file: string, frames: FrameRef[]) => Promise<number[]>;

/**
 * Splits an MP3 on frame boundaries. Parts carry no Info tag, so each part
 * plays frames × samples-per-frame samples and is declared as such; the
 * frames themselves are copied untouched.
 */
export async function splitMp3(
  file: string,
  info: Mp3Info,
  options: SplitOptions,
  loudness?: FrameLoudness,
): Promise<PartFile[]> {
  const frames: FrameRef[] = [];
  for await (const frame of mp3FrameOffsets(file, info)) frames.push(frame);
  const windowFrames = Math.max(1, Math.round((options.silenceWindowSeconds * info.sampleRate) / info.samplesPerFrame));
  const threshold = options.silenceThreshold ?? DEFAULT_SILENCE_THRESHOLD;
  const ranges: Array<[number, number]> = [];
  let start = 0;
  while (start < frames.length) {
    let end = start;
    let bytes = 0;
    while (end < frames.length && bytes + frames[end]!.bytes <= options.maxPartBytes) bytes += frames[end++]!.bytes;
    if (end === start) throw new RangeError('MAX_PART_BYTES is smaller than one MP3 frame');
    if (end < frames.length && loudness) {
      const from = Math.max(start + 1, end - windowFrames);
      // Decode from a few frames earlier: a decoder starting mid-stream needs them (bit reservoir, overlap).
      const warmup = Math.min(WARMUP_FRAMES, from - start);
      const levels = (await loudness(file, frames.slice(from - warmup, end))).slice(warmup);
      let best = -1;
      for (let i = levels.length - 1; i >= 0; i--)
        if (levels[i]! <= threshold && (best < 0 || levels[i]! < levels[best]!)) best = i;
      if (best >= 0) end = from + best + 1;
    }
    ranges.push([start, end]);
    start = end;
  }
  const parts: PartFile[] = [];
  let startSample = 0;
  for (const [i, [a, b]] of ranges.entries()) {
    const partPath = path.join(options.workDir, `${options.stem ?? 'part'}-${i + 1}.mp3`);
    const first = frames[a]!;
    const last = frames[b - 1]!;
    await pipeline(
      createReadStream(file, { start: first.offset, end: last.offset + last.bytes - 1 }),
      createWriteStream(partPath),
    );
    const samples = (b - a) * info.samplesPerFrame;
    parts.push({
      index: i + 1,
      path: partPath,
      bytes: last.offset + last.bytes - first.offset,
      samples,
      startSample,
      sampleRate: info.sampleRate,
      durationSeconds: samples / info.sampleRate,
    });
    startSample += samples;
  }
  return parts;
}

/** Copies a set of contiguous MP3 frames to a file (for decoding a window). */
export async function writeFrames(file: string, frames: FrameRef[], dest: string): Promise<void> {
  if (frames.length === 0) throw new RangeError('no frames');
  const first = frames[0]!;
  const last = frames[frames.length - 1]!;
  const handle = await open(file, 'r');
  try {
    await pipeline(
      Readable.from(
        (async function* read() {
          const total = last.offset + last.bytes - first.offset;
          const chunk = Buffer.alloc(Math.min(total, 1024 * 1024));
          for (let done = 0; done < total;) {
            const { bytesRead } = await handle.read(
              chunk,
              0,
              Math.min(chunk.length, total - done),
              first.offset + done,
            );
            if (bytesRead === 0) break;
            done += bytesRead;
            yield Buffer.from(chunk.subarray(0, bytesRead));
          }
        })(),
      ),
      createWriteStream(dest),
    );
  } finally {
    await handle.close();
  }
}
