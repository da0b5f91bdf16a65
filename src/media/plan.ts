/**
 * Pure decisions: what to do with an input (pass it through, repair its
 * header, or transcode it) and the exact ffmpeg argv for a transcode.
 * No I/O here, so every decision is table-tested from probe fixtures.
 */
import type { ChannelMode, OutputFormat } from '../config.js';
import type { ProbeResult } from './ffmpeg.js';
import type { RawHint } from './formats.js';
import { fileArg, inputOptions } from './ffmpeg.js';

/** The WAV header facts the plan needs (a subset of wav.ts's WavInfo). */
export interface WavFacts {
  formatTag: number;
  effectiveFormatTag: number;
  bitsPerSample: number;
  channels: number;
  sampleRate: number;
  sizesConsistent: boolean;
  plainHeader: boolean;
  frames: number;
}

/** The MP3 facts the plan needs (a subset of mp3.ts's Mp3Info). */
export interface Mp3Facts {
  layer: number;
  channels: number;
  frames: number;
}

export interface InputFacts {
  probe: ProbeResult;
  wav: WavFacts | null;
  mp3: Mp3Facts | null;
}

export interface OutputPolicy {
  format: OutputFormat;
  sampleRate: number;
  channels: ChannelMode;
  mp3BitrateKbps: number;
}

export type Container = 'wav' | 'mp3';

export interface Target {
  format: OutputFormat;
  container: Container;
  codec: 'pcm_s16le' | 'pcm_u8' | 'pcm_alaw' | 'pcm_mulaw' | 'libmp3lame';
  sampleRate: number;
  channels: 1 | 2;
  mp3BitrateKbps: number | undefined;
}

export type Plan =
  | { action: 'pass-through'; container: Container; channels: number; reasons: string[] }
  | { action: 'repair-header'; container: 'wav'; channels: number; reasons: string[] }
  | { action: 'transcode'; target: Target; reasons: string[] };

const CODEC_OF: Record<OutputFormat, Target['codec']> = {
  pcm16: 'pcm_s16le',
  pcm8: 'pcm_u8',
  alaw: 'pcm_alaw',
  mulaw: 'pcm_mulaw',
  mp3: 'libmp3lame',
};

export const CONTENT_TYPE: Record<Container, string> = { wav: 'audio/wave', mp3: 'audio/mpeg' };

/** Format tags Imagicle reads: PCM (8 or 16 bit), A-law, u-law. */
function wavCodecAccepted(wav: WavFacts): boolean {
  if (!wav.plainHeader) return false;
  if (wav.formatTag === 1) return wav.bitsPerSample === 8 || wav.bitsPerSample === 16;
  if (wav.formatTag === 6 || wav.formatTag === 7) return wav.bitsPerSample === 8;
  return false;
}

function channelsFor(mode: ChannelMode, inputChannels: number): 1 | 2 {
  if (mode === 'mono') return 1;
  if (mode === 'stereo') return 2;
  return inputChannels === 1 ? 1 : 2;
}

function channelsWanted(mode: ChannelMode, inputChannels: number): boolean {
  if (inputChannels > 2) return false;
  if (mode === 'mono') return inputChannels === 1;
  if (mode === 'stereo') return inputChannels === 2;
  return true;
}

export function targetFor(policy: OutputPolicy, inputChannels: number): Target {
  return {
    format: policy.format,
    container: policy.format === 'mp3' ? 'mp3' : 'wav',
    codec: CODEC_OF[policy.format],
    sampleRate: policy.sampleRate,
    channels: channelsFor(policy.channels, inputChannels),
    mp3BitrateKbps: policy.format === 'mp3' ? policy.mp3BitrateKbps : undefined,
  };
}

/** Decides what to do with an input. Compliant input is never re-encoded. */
export function planFor(facts: InputFacts, policy: OutputPolicy): Plan {
  const { probe, wav, mp3 } = facts;
  const channels = probe.audio.channels;
  const transcode = (reason: string): Plan => ({
    action: 'transcode',
    target: targetFor(policy, channels),
    reasons: [reason],
  });

  if (!channelsWanted(policy.channels, channels)) {
    return transcode(
      channels > 2
        ? `${channels} channels: downmixed to ${policy.channels === 'mono' ? 'mono' : 'stereo'}`
        : `CHANNELS=${policy.channels} and the input has ${channels} channel${channels === 1 ? '' : 's'}`,
    );
  }
  if (probe.rawHint) return transcode(`headerless ${probe.rawHint.description} needs a header`);

  if (wav && probe.formatName === 'wav') {
    if (!wavCodecAccepted(wav)) {
      const what = wav.plainHeader
        ? `WAV format tag ${wav.formatTag} (${probe.audio.codecName}, ${wav.bitsPerSample} bit)`
        : `WAVE_FORMAT_EXTENSIBLE header (${probe.audio.codecName}, ${wav.bitsPerSample} bit)`;
      return transcode(`${what} is not accepted by Imagicle`);
    }
    if (wav.frames === 0) return transcode('the WAV holds no complete sample frame');
    if (!wav.sizesConsistent) {
      return { action: 'repair-header', container: 'wav', channels, reasons: ['WAV size fields are wrong: header repaired, audio untouched'] };
    }
    return { action: 'pass-through', container: 'wav', channels, reasons: [`compliant WAV (${probe.audio.codecName}): forwarded as is`] };
  }
  if (mp3 && probe.formatName === 'mp3') {
    if (mp3.layer !== 3) return transcode(`MPEG layer ${mp3.layer} audio is not MP3`);
    if (mp3.frames === 0) return transcode('the MP3 holds no audio frame');
    return { action: 'pass-through', container: 'mp3', channels, reasons: ['compliant MP3: forwarded as is'] };
  }
  return transcode(`${probe.audio.codecName} in ${probe.formatName} is not accepted by Imagicle`);
}

/** Bytes per second of a target's audio (MP3: its constant bitrate). */
export function bytesPerSecond(target: Target): number {
  if (target.container === 'mp3') return ((target.mp3BitrateKbps ?? 32) * 1000) / 8;
  const bytesPerSample = target.codec === 'pcm_s16le' ? 2 : 1;
  return target.sampleRate * target.channels * bytesPerSample;
}

export interface TranscodeIo {
  input: string;
  output: string;
  hint: RawHint | undefined;
  /** Output duration cap (-t): headers can lie about the input's length. */
  maxDurationSeconds: number;
  /** Output size cap (-fs). */
  maxOutputBytes: number;
}

/** The ffmpeg argv (after the global options) for a transcode plan. */
export function argsFor(target: Target, io: TranscodeIo): string[] {
  const args = [
    ...inputOptions(io.hint),
    '-i',
    fileArg(io.input),
    '-map',
    '0:a:0',
    '-vn',
    '-sn',
    '-dn',
    '-map_metadata',
    '-1',
    '-map_chapters',
    '-1',
    '-t',
    String(io.maxDurationSeconds),
    '-ac',
    String(target.channels),
    '-ar',
    String(target.sampleRate),
    '-c:a',
    target.codec,
  ];
  if (target.container === 'mp3') {
    args.push('-b:a', `${target.mp3BitrateKbps ?? 32}k`, '-write_xing', '1', '-id3v2_version', '0');
  }
  args.push('-fs', String(Math.ceil(io.maxOutputBytes)), '-bitexact', '-f', target.container, '-y', fileArg(io.output));
  return args;
}
