/**
 * Call legs made of speech (espeak-ng) in various codecs, and the measures
 * the stereo tests use: energy per channel in time windows, and where the
 * speech starts and ends.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeFloat, rms } from './audio.js';

const run = promisify(execFile);

/** espeak-ng's speech (22.05 kHz mono WAV). */
export async function say(text: string, voice: string, out: string): Promise<void> {
  await run('espeak-ng', ['-v', voice, '-s', '190', '-w', out, text]);
}

/** ffmpeg, quiet and overwriting. */
export async function ff(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-nostdin', '-hide_banner', '-v', 'error', '-y', ...args]);
}

/** Threshold for "someone speaks in this window" on full-scale-1 float samples. */
export const SPEECH_RMS = 0.02;
/** "Nothing there": digital silence or codec dust. */
export const QUIET_RMS = 0.002;

export interface Span {
  start: number;
  end: number;
}

/** First and last 20 ms window louder than SPEECH_RMS (seconds). */
export function speechSpan(samples: Float32Array, rate: number): Span {
  const win = 0.02;
  const windows = Math.floor(samples.length / rate / win);
  let start = -1;
  let end = -1;
  for (let w = 0; w < windows; w++) {
    if (rms(samples, rate, w * win, (w + 1) * win) > SPEECH_RMS) {
      if (start < 0) start = w * win;
      end = (w + 1) * win;
    }
  }
  if (start < 0) throw new Error('no speech found');
  return { start, end };
}

/** The speech span of a mono file. */
export async function spanOf(file: string, rate: number): Promise<Span> {
  const [mono] = await decodeFloat(file, 1);
  return speechSpan(mono!, rate);
}

export interface Channels {
  left: Float32Array;
  right: Float32Array;
  rate: number;
}

export async function decodeStereo(file: string, rate: number): Promise<Channels> {
  const [left, right] = await decodeFloat(file, 2);
  return { left: left!, right: right!, rate };
}

/** RMS of both channels over [from, to] (seconds), inset by 40 ms at each end to stay clear of edges. */
export function energy(c: Channels, from: number, to: number): { left: number; right: number } {
  return { left: rms(c.left, c.rate, from + 0.04, to - 0.04), right: rms(c.right, c.rate, from + 0.04, to - 0.04) };
}
