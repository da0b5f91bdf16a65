/**
 * Waveform pictures: one PNG per channel, drawn by one ffmpeg run
 * (showwavespic), through the same restricted input options as every other
 * run (file protocol, whitelisted demuxers, the first audio stream only).
 * Only for audio waveform-wav.ts does not read (MP3 outputs): a WAV's are
 * drawn in Node, without a child process.
 */
import { fileArg, inputOptions, runFfmpeg } from './ffmpeg-run.js';
import type { FfmpegBinaries } from './ffmpeg-tools.js';
import type { RawHint } from './formats.js';

export const WAVEFORM_SIZE = { width: 800, height: 120 } as const;
/** A picture needs no more than this much audio decoded: longer recordings are cut (the picture says so). */
export const WAVEFORM_MAX_SECONDS = 4 * 3600;

/** Pure: the argv that draws `channels` pictures of `input` into `outputs[i]`. */
export function waveformArgs(
  input: string,
  hint: RawHint | undefined,
  channels: number,
  outputs: readonly string[],
): string[] {
  if (channels < 1 || outputs.length !== channels) throw new RangeError('one output per channel');
  const { width, height } = WAVEFORM_SIZE;
  const split = channels > 1 ? `[0:a:0]asplit=${channels}${outputs.map((_, i) => `[a${i}]`).join('')};` : '';
  const chains = outputs.map((_, i) => {
    const source = channels > 1 ? `[a${i}]` : '[0:a:0]';
    return `${source}pan=mono|c0=c${i},showwavespic=s=${width}x${height}:colors=0x2563eb:scale=sqrt[w${i}]`;
  });
  return [
    ...inputOptions(hint),
    '-t',
    String(WAVEFORM_MAX_SECONDS),
    '-i',
    fileArg(input),
    '-filter_complex',
    split + chains.join(';'),
    ...outputs.flatMap((out, i) => [
      '-map',
      `[w${i}]`,
      '-frames:v',
      '1',
      '-c:v',
      'png',
      '-f',
      'image2',
      '-update',
      '1',
      '-y',
      fileArg(out),
    ]),
  ];
}

export async function drawWaveforms(
  bins: FfmpegBinaries,
  input: { path: string; hint: RawHint | undefined; channels: number },
  outputs: readonly string[],
  options: { timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<void> {
  await runFfmpeg(bins, waveformArgs(input.path, input.hint, input.channels, outputs), {
    timeoutMs: options.timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
