/** Probing and decoding of outputs, to check them by what they contain rather than by their bytes. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ProbedStream {
  codec: string;
  channels: number;
  sampleRate: number;
  durationSeconds: number;
  formatName: string;
}

export async function ffprobeFile(file: string, inputFormat?: string): Promise<ProbedStream> {
  const args = [
    '-v',
    'error',
    ...(inputFormat ? ['-f', inputFormat] : []),
    '-show_streams',
    '-show_format',
    '-select_streams',
    'a:0',
    '-of',
    'json',
    file,
  ];
  const { stdout } = await run('ffprobe', args);
  const parsed = JSON.parse(stdout) as {
    streams: Array<{ codec_name: string; channels: number; sample_rate: string; duration?: string }>;
    format: { format_name: string; duration?: string };
  };
  const s = parsed.streams[0];
  if (!s) throw new Error(`no audio stream in ${file}`);
  return {
    codec: s.codec_name,
    channels: s.channels,
    sampleRate: Number(s.sample_rate),
    durationSeconds: Number(s.duration ?? parsed.format.duration),
    formatName: parsed.format.format_name,
  };
}

/** Decodes a file to interleaved float samples at its own rate. */
export async function decodeFloat(file: string, channels: number): Promise<Float32Array[]> {
  const { stdout } = await run(
    'ffmpeg',
    ['-v', 'error', '-i', file, '-f', 'f32le', '-ac', String(channels), 'pipe:1'],
    {
      encoding: 'buffer',
      maxBuffer: 512 * 1024 * 1024,
    },
  );
  const all = new Float32Array(stdout.buffer, stdout.byteOffset, stdout.byteLength / 4);
  const perChannel = Array.from({ length: channels }, () => new Float32Array(all.length / channels));
  for (let i = 0; i < all.length; i++) perChannel[i % channels]![Math.floor(i / channels)] = all[i]!;
  return perChannel;
}

/** RMS of a channel between two times (seconds). */
export function rms(samples: Float32Array, rate: number, from: number, to: number): number {
  const a = Math.max(0, Math.floor(from * rate));
  const b = Math.min(samples.length, Math.floor(to * rate));
  let sum = 0;
  for (let i = a; i < b; i++) sum += samples[i]! * samples[i]!;
  return b > a ? Math.sqrt(sum / (b - a)) : 0;
}

export interface ProbedPicture {
  codec_name: string;
  width: number;
  height: number;
  pix_fmt: string;
}

/** Codec, size and pixel format of a picture (a waveform PNG), as ffprobe reads it. */
export async function probePicture(file: string): Promise<ProbedPicture> {
  const args = ['-v', 'error', '-show_entries', 'stream=codec_name,width,height,pix_fmt', '-of', 'json', file];
  const { stdout } = await run('ffprobe', args);
  return (JSON.parse(stdout) as { streams: ProbedPicture[] }).streams[0]!;
}
