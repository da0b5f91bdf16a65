/**
 * Pure decisions: what to do with an input (pass it through, repair its
 * header, or transcode it), to what target, and which samples to keep. The
 * ffmpeg argv is render-job.ts's (argsFor). No I/O here, so every decision
 * is table-tested from probe fixtures.
 */
import type { ChannelMode, OutputFormat } from './output.js';
import type { ProbeResult } from './ffprobe.js';
import { MAX_LEADING_ID3V2_TAGS } from './mp3.js';

/** The WAV header facts the plan needs (a subset of wav.ts's WavInfo). */
export interface WavFacts {
  formatTag: number;
  effectiveFormatTag: number;
  bitsPerSample: number;
  channels: number;
  sampleRate: number;
  sizesConsistent: boolean;
  plainHeader: boolean;
  /** Whole frames (PCM) or whole blocks (ADPCM, GSM). */
  frames: number;
  /** Sample count of the `fact` chunk, when there is one. */
  factSamples?: number | undefined;
  /** ADPCM/GSM samples per channel in one block. */
  samplesPerBlock?: number | undefined;
  /** PCM/G.711 fmt fields that contradict each other (see wav.ts headerProblemsOf). */
  headerProblems?: readonly string[] | undefined;
}

/** The MP3 facts the plan needs (a subset of mp3.ts's Mp3Info). */
interface Mp3Facts {
  layer: number;
  channels: number;
  frames: number;
  /** ID3v2 tags chained before the first frame. */
  id3v2Tags?: number | undefined;
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

/** Decoded samples (per channel, at the input's rate) to keep: [startSample, endSample). */
export interface SampleTrim {
  startSample: number;
  endSample: number;
}

export type Plan =
  | { action: 'pass-through'; container: Container; channels: number; reasons: string[] }
  /** `rewrite`: a new canonical header and the same samples; else only the size fields are fixed in place. */
  | { action: 'repair-header'; container: Container; channels: number; reasons: string[]; rewrite: boolean }
  | { action: 'transcode'; target: Target; reasons: string[]; trim?: SampleTrim | undefined };

const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
const MIN_RATE = 8000;
const MAX_RATE = 48000;

/** Names of the WAV format tags met in telephony archives. */
const WAV_TAG_NAMES: Readonly<Record<number, string>> = {
  0x0001: 'PCM',
  0x0002: 'MS ADPCM',
  0x0003: 'IEEE float',
  0x0006: 'A-law',
  0x0007: 'u-law',
  0x0010: 'OKI ADPCM',
  0x0011: 'IMA ADPCM',
  0x0022: 'TrueSpeech',
  0x0031: 'GSM 6.10',
  0x0040: 'G.721 ADPCM',
  0x0045: 'G.726 ADPCM',
  0x0050: 'MPEG audio',
  0x0055: 'MPEG layer III',
  0x0064: 'G.726 ADPCM',
  0x0065: 'G.722 ADPCM',
};

const hexTag = (tag: number): string => `0x${tag.toString(16).padStart(4, '0')}`;

/** "WAV format tag 0x0031 (GSM 6.10, gsm_ms)", naming what the header says and what ffprobe decodes. */
function describeWavFormat(wav: WavFacts, codecName: string): string {
  const tag = wav.formatTag === WAVE_FORMAT_EXTENSIBLE ? wav.effectiveFormatTag : wav.formatTag;
  const name = WAV_TAG_NAMES[tag] ?? 'unknown format';
  const bits = wav.bitsPerSample > 0 && (tag === 1 || tag === 3) ? `${wav.bitsPerSample}-bit ` : '';
  if (wav.formatTag === WAVE_FORMAT_EXTENSIBLE) {
    return `WAVE_FORMAT_EXTENSIBLE header with sub-format ${hexTag(tag)} (${bits}${name}, ${codecName})`;
  }
  return `WAV format tag ${hexTag(tag)} (${bits}${name}, ${codecName})`;
}

/** The encoder of each output format. */
export const CODEC_OF: Readonly<Record<OutputFormat, Target['codec']>> = {
  pcm16: 'pcm_s16le',
  pcm8: 'pcm_u8',
  alaw: 'pcm_alaw',
  mulaw: 'pcm_mulaw',
  mp3: 'libmp3lame',
};

export const CONTENT_TYPE: Record<Container, string> = { wav: 'audio/wave', mp3: 'audio/mpeg' };

/** Samples Imagicle reads: PCM (8 or 16 bit), A-law, u-law, whatever header (plain or extensible) holds them. */
function samplesAccepted(wav: WavFacts): boolean {
  const tag = wav.formatTag === WAVE_FORMAT_EXTENSIBLE ? wav.effectiveFormatTag : wav.formatTag;
  if (tag === 1) return wav.bitsPerSample === 8 || wav.bitsPerSample === 16;
  if (tag === 6 || tag === 7) return wav.bitsPerSample === 8;
  return false;
}

/**
 * ADPCM and GSM blocks end in padding. The `fact` chunk says how many samples
 * are real; it is used when it falls inside the last whole block, and ignored
 * when it contradicts the data (libsndfile's stereo IMA ADPCM).
 */
export function blockCodecTrim(wav: WavFacts): { trim: SampleTrim | undefined; reason: string | undefined } {
  const perBlock = wav.samplesPerBlock;
  const fact = wav.factSamples;
  if (perBlock === undefined || perBlock === 0 || fact === undefined || wav.frames === 0) {
    return { trim: undefined, reason: undefined };
  }
  const decodable = wav.frames * perBlock;
  if (fact > decodable - perBlock && fact <= decodable) {
    const padding = decodable - fact;
    return {
      trim: padding > 0 ? { startSample: 0, endSample: fact } : undefined,
      reason: `fact chunk: ${fact} samples, the last block's ${padding} samples of padding trimmed`,
    };
  }
  return {
    trim: undefined,
    reason: `fact chunk (${fact} samples) contradicts the data (${wav.frames} blocks of ${perBlock} samples): ignored`,
  };
}

function planWav(wav: WavFacts, probe: ProbeResult, transcode: (reason: string) => Plan): Plan {
  const channels = probe.audio.channels;
  if (!samplesAccepted(wav)) {
    const plan = transcode(`${describeWavFormat(wav, probe.audio.codecName)} is not accepted by Imagicle`);
    const { trim, reason } = blockCodecTrim(wav);
    if (plan.action !== 'transcode' || reason === undefined) return plan;
    return { ...plan, reasons: [...plan.reasons, reason], trim };
  }
  if (wav.sampleRate < MIN_RATE || wav.sampleRate > MAX_RATE) {
    return transcode(
      `the WAV header's sample rate ${wav.sampleRate} Hz is outside ${MIN_RATE}..${MAX_RATE} Hz: resampled`,
    );
  }
  if (wav.frames === 0) return transcode('the WAV holds no complete sample frame');
  const repairs: string[] = [];
  if (wav.formatTag === WAVE_FORMAT_EXTENSIBLE) {
    const what = describeWavFormat(wav, probe.audio.codecName);
    repairs.push(`${what}: rewritten as plain format tag ${wav.effectiveFormatTag}`);
  }
  for (const problem of wav.headerProblems ?? []) repairs.push(`the header's ${problem} is corrected`);
  if (!wav.sizesConsistent) repairs.push('WAV size fields are wrong');
  if (repairs.length === 0) {
    const reason = `compliant WAV (${probe.audio.codecName}): forwarded as is`;
    return { action: 'pass-through', container: 'wav', channels, reasons: [reason] };
  }
  // Only wrong sizes and no fact chunk to keep in step: fixed in place; anything else gets a new header.
  const rewrite = repairs.length > (wav.sizesConsistent ? 0 : 1) || wav.factSamples !== undefined;
  if (wav.factSamples !== undefined) repairs.push('the fact chunk is rewritten');
  const reasons = [...repairs, 'header repaired, samples and rate untouched'];
  return { action: 'repair-header', container: 'wav', channels, rewrite, reasons };
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

  if (wav && probe.formatName === 'wav') return planWav(wav, probe, transcode);
  if (mp3 && probe.formatName === 'mp3') {
    if (mp3.layer !== 3) return transcode(`MPEG layer ${mp3.layer} audio is not MP3`);
    if (mp3.frames === 0) return transcode('the MP3 holds no audio frame');
    if ((mp3.id3v2Tags ?? 0) > MAX_LEADING_ID3V2_TAGS) {
      return {
        action: 'repair-header',
        container: 'mp3',
        channels,
        rewrite: true,
        reasons: [
          `${mp3.id3v2Tags} ID3v2 tags precede the audio (Imagicle reads at most ${MAX_LEADING_ID3V2_TAGS}): ` +
            'removed, frames untouched',
        ],
      };
    }
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

/**
 * The filter that keeps [start, end) of the decoded samples, restarting the
 * timestamps at 0. Silence makes up for samples the encoder never flushed
 * (Speex narrowband stops short of its granule position by part of a frame).
 */
export function trimFilter(trim: SampleTrim): string {
  const { startSample: start, endSample: end } = trim;
  return `atrim=start_sample=${start}:end_sample=${end},asetpts=PTS-STARTPTS,apad=whole_len=${end - start}`;
}
