/**
 * ffprobe under the same whitelists as ffmpeg, read into our own
 * ProbeResult, or a ProbeFailure a client can act on.
 */
import { open } from 'node:fs/promises';
import { runProcess } from './process.js';
import { CONTENT_HEAD_BYTES, contentOverridesExtension, rawHintFor, type RawHint } from './formats.js';
import type { FfmpegBinaries } from './ffmpeg-tools.js';
import { allocOptions, fileArg, inputOptions, throwIfInterrupted } from './ffmpeg-run.js';

export interface AudioStreamInfo {
  index: number;
  codecName: string;
  codecLongName: string;
  sampleFormat: string | undefined;
  sampleRate: number;
  channels: number;
  channelLayout: string | undefined;
  bitsPerSample: number;
  durationSeconds: number | undefined;
  bitRate: number | undefined;
  /** Packets the container declares (nb_frames), when it says: its demuxer may index every one in memory. */
  declaredPackets?: number | undefined;
}

export interface ProbeResult {
  /** Demuxer that opened the file, e.g. "wav", "mov,mp4,m4a,3gp,3g2,mj2". */
  formatName: string;
  formatLongName: string;
  durationSeconds: number | undefined;
  sizeBytes: number;
  audio: AudioStreamInfo;
  audioStreamCount: number;
  hasVideo: boolean;
  /** Set when the file was read as a headerless format named by its extension. */
  rawHint: RawHint | undefined;
}

export type ProbeFailure = { kind: 'not-audio' | 'no-audio-stream' | 'unreadable'; message: string };

/**
 * Chooses between autodetection and the extension's raw format: the content
 * wins over the extension (a container's magic bytes, or a run of MP3 frames).
 */
async function hintFor(filePath: string, extension: string, voxSampleRate?: number): Promise<RawHint | undefined> {
  const hint = rawHintFor(extension, voxSampleRate);
  if (!hint) return undefined;
  const fh = await open(filePath, 'r');
  try {
    const head = Buffer.alloc(CONTENT_HEAD_BYTES);
    const { bytesRead } = await fh.read(head, 0, CONTENT_HEAD_BYTES, 0);
    return contentOverridesExtension(head.subarray(0, bytesRead)) ? undefined : hint;
  } finally {
    await fh.close();
  }
}

interface FfprobeStream {
  index?: number;
  codec_type?: string;
  codec_name?: string;
  codec_long_name?: string;
  sample_fmt?: string;
  sample_rate?: string;
  channels?: number;
  channel_layout?: string;
  bits_per_sample?: number;
  bits_per_raw_sample?: string;
  duration?: string;
  bit_rate?: string;
  nb_frames?: string;
  disposition?: { attached_pic?: number };
}
interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; format_long_name?: string; duration?: string; size?: string };
}

const num = (v: string | number | undefined): number | undefined => {
  const n = typeof v === 'number' ? v : v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? n : undefined;
};

export interface ProbeOptions {
  extension: string;
  /** Sample rate of a headerless VOX file (it does not say). */
  voxSampleRate?: number | undefined;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Probes a file with ffprobe under the whitelists; resolves to a ProbeResult or a ProbeFailure. */
export async function probe(
  bins: FfmpegBinaries,
  filePath: string,
  options: ProbeOptions,
): Promise<ProbeResult | ProbeFailure> {
  const hint = await hintFor(filePath, options.extension, options.voxSampleRate);
  if (hint?.decoder) return forcedDecoderProbe(filePath, hint);
  const args = [
    '-hide_banner',
    '-v',
    'error',
    ...allocOptions(),
    ...inputOptions(hint),
    '-show_format',
    '-show_streams',
    '-of',
    'json',
    fileArg(filePath),
  ];
  const result = await runProcess(bins.ffprobe, args, {
    timeoutMs: options.timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
    maxStdoutBytes: 4 * 1024 * 1024,
  });
  throwIfInterrupted(result, [bins.ffprobe, ...args]);
  if (result.code !== 0) return { kind: 'not-audio', message: describeProbeError(result.stderrTail) };
  let parsed: FfprobeOutput;
  try {
    parsed = JSON.parse(result.stdout) as FfprobeOutput;
  } catch {
    return { kind: 'unreadable', message: 'ffprobe returned unreadable output' };
  }
  const streams = parsed.streams ?? [];
  const audioStreams = streams.filter((s) => s.codec_type === 'audio');
  const first = audioStreams[0];
  const formatName = parsed.format?.format_name ?? 'unknown';
  if (!first) {
    const kinds = [...new Set(streams.map((s) => `${s.codec_type ?? 'unknown'} (${s.codec_name ?? '?'})`))];
    return {
      kind: 'no-audio-stream',
      message:
        kinds.length > 0
          ? `The file (${formatName}) has no audio track, only: ${kinds.join(', ')}`
          : `The file (${formatName}) has no audio track`,
    };
  }
  const sampleRate = num(first.sample_rate) ?? 0;
  const channels = first.channels ?? 0;
  if (sampleRate <= 0 || channels <= 0) {
    return {
      kind: 'unreadable',
      message: `The audio track (${first.codec_name ?? 'unknown codec'}) has no usable sample rate or channel count`,
    };
  }
  return {
    formatName,
    formatLongName: parsed.format?.format_long_name ?? formatName,
    durationSeconds: num(parsed.format?.duration) ?? num(first.duration),
    sizeBytes: num(parsed.format?.size) ?? 0,
    audio: {
      index: first.index ?? 0,
      codecName: first.codec_name ?? 'unknown',
      codecLongName: first.codec_long_name ?? first.codec_name ?? 'unknown',
      sampleFormat: first.sample_fmt,
      sampleRate,
      channels,
      channelLayout: first.channel_layout,
      bitsPerSample: first.bits_per_sample ?? num(first.bits_per_raw_sample) ?? 0,
      durationSeconds: num(first.duration),
      bitRate: num(first.bit_rate),
      declaredPackets: num(first.nb_frames),
    },
    audioStreamCount: audioStreams.length,
    hasVideo: streams.some((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1),
    rawHint: hint,
  };
}

/**
 * ffprobe cannot force a decoder, and a headerless ADPCM file has nothing to
 * probe anyway: every byte is audio, so its length is exact by arithmetic.
 */
async function forcedDecoderProbe(filePath: string, hint: RawHint): Promise<ProbeResult | ProbeFailure> {
  const fh = await open(filePath, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } finally {
    await fh.close();
  }
  const sampleRate = Number(hint.options.sample_rate);
  const samples = size * (hint.samplesPerByte ?? 1);
  if (samples === 0) return { kind: 'not-audio', message: 'The file is empty or truncated' };
  const durationSeconds = samples / sampleRate;
  return {
    formatName: hint.demuxer,
    formatLongName: hint.description,
    durationSeconds,
    sizeBytes: size,
    audio: {
      index: 0,
      codecName: hint.decoder ?? 'unknown',
      codecLongName: hint.description,
      sampleFormat: 's16',
      sampleRate,
      channels: 1,
      channelLayout: 'mono',
      bitsPerSample: 4,
      durationSeconds,
      bitRate: sampleRate * 4,
    },
    audioStreamCount: 1,
    hasVideo: false,
    rawHint: hint,
  };
}

export function isProbeFailure(value: ProbeResult | ProbeFailure): value is ProbeFailure {
  return 'kind' in value;
}

/** Demuxers whose files point at other files or URLs: named as such in the error. */
const REFERENCING_DEMUXERS =
  /^(hls|applehttp|concat|ffconcat|dash|image2|sdp|rtsp|rtp|tee|data|subfile|avi|webm_dash_manifest|mpjpeg)/;

/** Turns ffprobe's last error line into something a client can act on, without paths. */
function describeProbeError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const text = lines.join(' ');
  if (/not on whitelist/i.test(text)) {
    const fmt = /\[([^\] @]+)/.exec(text)?.[1] ?? 'unknown';
    if (REFERENCING_DEMUXERS.test(fmt)) {
      return `The file is ${/^[aeiou]/.test(fmt) ? 'an' : 'a'} ${fmt} playlist or script, which the gateway refuses: it can reference other files or URLs`;
    }
    return `The file was recognised as ${fmt}, which is not an audio format the gateway accepts`;
  }
  if (/Invalid data found when processing input/i.test(text))
    return 'The file is not audio: no known audio format was recognised';
  if (/End of file/i.test(text) || text === '') return 'The file is empty or truncated';
  const last = (lines[lines.length - 1] ?? 'unknown error').replace(/file:\S+/g, 'input');
  return `The file cannot be read as audio: ${last}`;
}
