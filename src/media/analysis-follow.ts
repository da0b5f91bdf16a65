/**
 * The stereo analysis of a WAV while ffmpeg is still writing it. ffmpeg
 * writes a WAV's header first (with its sizes left at 0) and then its
 * samples in order, fixing the sizes when it exits; the samples already
 * written can be measured while the rest is decoded. The analysis then
 * costs the other core's time instead of wall-clock time after the render
 * (about 0.2 s for an hour of 8 kHz stereo).
 *
 * Only 16-bit PCM stereo is followed (what every stereo WAV output is).
 * Anything unexpected (another format, a header that moved, ffmpeg
 * failing, an abort) gives undefined, and the caller analyses the finished
 * file as before: following is an optimisation, never a second opinion.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { classify, DEFAULT_THRESHOLDS, type StereoAnalysis } from './analysis.js';
import { LevelMeter } from './level-meter.js';
import { readWavInfo, type WavInfo } from './wav.js';

export interface FollowedAnalysis {
  /** The file that was followed: the analysis is that file's, samples included. */
  file: string;
  frames: number;
  sampleRate: number;
  analysis: StereoAnalysis;
}

/** Another reader of the same samples (the DTMF detector), told the rate first and then every block. */
export interface AlongsideReader {
  start(sampleRate: number): void;
  push(samples: Int16Array, frames: number): void;
}

/** How long to wait for ffmpeg to write more once every written sample is measured. */
const POLL_MS = 25;
const BLOCK_BYTES = 1024 * 1024;

/** Follows `file` until `exited` says how ffmpeg ended (true: success); never rejects. */
export async function analyzeWhileWritten(
  file: string,
  exited: Promise<boolean>,
  signal?: AbortSignal,
  alongside?: AlongsideReader,
): Promise<FollowedAnalysis | undefined> {
  let fh: FileHandle | undefined;
  try {
    let outcome: boolean | undefined;
    void exited.then((ok) => (outcome = ok));
    const wait = (): Promise<unknown> => Promise.race([exited, sleep(POLL_MS, undefined, { ref: false })]);

    let header: WavInfo | null = null;
    for (;;) {
      const ended = outcome;
      if (signal?.aborted || ended === false) return undefined;
      fh ??= await open(file, 'r').catch(() => undefined);
      if (fh) header = await readWavInfo(file);
      if (header) break;
      if (ended) return undefined;
      await wait();
    }
    if (!fh || !isFollowable(header)) return undefined;

    const meter = new LevelMeter(2, header.sampleRate, DEFAULT_THRESHOLDS.windowMs);
    alongside?.start(header.sampleRate);
    const buffer = Buffer.allocUnsafe(BLOCK_BYTES);
    let position = header.dataOffset;
    let end: number | undefined;
    for (;;) {
      const ended = outcome;
      if (signal?.aborted || ended === false) return undefined;
      if (ended && end === undefined) {
        // ffmpeg has exited: its final header says where the samples end.
        const final = await readWavInfo(file);
        if (!final || !sameLayout(final, header)) return undefined;
        end = final.dataOffset + final.dataBytes;
        if (position > end) return undefined;
      }
      const available = end ?? (await fh.stat()).size;
      const whole = Math.floor((available - position) / header.blockAlign) * header.blockAlign;
      if (whole > 0) {
        const { bytesRead } = await fh.read(buffer, 0, Math.min(whole, buffer.length), position);
        const frames = Math.floor(bytesRead / header.blockAlign);
        if (frames === 0) return undefined;
        const samples = new Int16Array(buffer.buffer, buffer.byteOffset, frames * 2);
        meter.pushInt16(samples, frames);
        alongside?.push(samples, frames);
        position += frames * header.blockAlign;
        continue;
      }
      if (end !== undefined) break;
      await wait();
    }
    const raw = meter.result();
    return { file, frames: raw.frames, sampleRate: header.sampleRate, analysis: classify(raw) };
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function isFollowable(info: WavInfo): boolean {
  return info.formatTag === 1 && info.bitsPerSample === 16 && info.channels === 2 && info.blockAlign === 4;
}

function sameLayout(a: WavInfo, b: WavInfo): boolean {
  return (
    a.dataOffset === b.dataOffset &&
    a.formatTag === b.formatTag &&
    a.channels === b.channels &&
    a.sampleRate === b.sampleRate &&
    a.bitsPerSample === b.bitsPerSample
  );
}
