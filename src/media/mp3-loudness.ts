/** Loudness per MP3 frame, by decoding just a window of frames with ffmpeg (for choosing a cut in a silence). */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileArg, inputOptions, runFfmpeg } from './ffmpeg-run.js';
import type { FfmpegBinaries } from './ffmpeg-tools.js';
import { writeFrames, type FrameLoudness } from './split.js';
import { readWavInfo } from './wav.js';

/** Samples a standard MP3 decoder outputs before the first encoded sample (528 + 1). */
const DECODER_DELAY = 529;

export function mp3FrameLoudness(
  bins: FfmpegBinaries,
  workDir: string,
  samplesPerFrame: number,
  signal?: AbortSignal,
): FrameLoudness {
  return async (file, frames) => {
    const window = path.join(workDir, 'window.mp3');
    const decoded = path.join(workDir, 'window.wav');
    try {
      await writeFrames(file, frames, window);
      await runFfmpeg(
        bins,
        [
          ...inputOptions(undefined),
          '-f',
          'mp3',
          '-i',
          fileArg(window),
          '-ac',
          '1',
          '-c:a',
          'pcm_s16le',
          '-bitexact',
          '-f',
          'wav',
          '-y',
          fileArg(decoded),
        ],
        { timeoutMs: 60_000, ...(signal ? { signal } : {}) },
      );
      const info = await readWavInfo(decoded);
      if (!info) return frames.map(() => Number.POSITIVE_INFINITY);
      const pcm = await readFile(decoded);
      const levels: number[] = [];
      for (let f = 0; f < frames.length; f++) {
        let sum = 0;
        let n = 0;
        const from = f * samplesPerFrame + DECODER_DELAY;
        for (let s = from; s < from + samplesPerFrame && s < info.frames; s++, n++) {
          const v = pcm.readInt16LE(info.dataOffset + s * 2) / 0x8000;
          sum += v * v;
        }
        levels.push(n > 0 ? Math.sqrt(sum / n) : Number.POSITIVE_INFINITY);
      }
      return levels;
    } finally {
      await Promise.all([rm(window, { force: true }), rm(decoded, { force: true })]);
    }
  };
}
