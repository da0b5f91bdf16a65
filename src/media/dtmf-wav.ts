/**
 * DTMF in a WAV file: detection in one streaming pass over its samples, and
 * masking in place, span by span. Masking rewrites only the frames of the
 * masked spans (decoded, masked in the tone's channel, encoded back in the
 * file's own sample format); every other byte, the other channel's included,
 * stays as it was, and the length never changes.
 */
import { open } from 'node:fs/promises';
import { DtmfDetector, type DtmfDetectorOptions, type DtmfTone } from './dtmf-detect.js';
import { maskSamples, type DtmfMaskKind, type MaskSpan } from './dtmf-mask.js';
import { decodeAlaw, decodeMulaw, encodeAlaw, encodeMulaw } from './g711.js';
import { readWavInfo, type WavInfo } from './wav.js';
import {
  int16View,
  readAnalysableWav,
  sampleTag,
  streamWavBlocks,
  streamWavSamples,
  type SampleFormat,
} from './wav-samples.js';

/** The tones found in one file's samples (the file and its length say which samples). */
export interface DtmfScan {
  file: string;
  frames: number;
  sampleRate: number;
  channels: number;
  tones: DtmfTone[];
}

/** Detects the tones of a WAV (PCM 8/16/24/32, float, A-law, u-law) in one pass. */
export async function detectInWav(
  file: string,
  signal?: AbortSignal,
  options?: DtmfDetectorOptions,
): Promise<DtmfScan & { detector: DtmfDetector }> {
  let detector: DtmfDetector | undefined;
  let format: SampleFormat | undefined;
  const start = (f: SampleFormat): void => {
    format = f;
    detector = new DtmfDetector(f.channels, f.sampleRate, options);
  };
  const info = await readAnalysableWav(file);
  if (sampleTag(info) === 1 && info.bitsPerSample === 16) {
    await streamWavBlocks(
      file,
      info,
      start,
      (block, frames) => detector!.pushInt16(int16View(block, block.length / 2), frames),
      signal,
    );
  } else {
    await streamWavSamples(file, start, (samples, frames) => detector!.push(samples, frames), signal);
  }
  const tones = detector!.finish();
  return {
    file,
    frames: format!.frames,
    sampleRate: format!.sampleRate,
    channels: format!.channels,
    tones,
    detector: detector!,
  };
}

interface SampleCodec {
  bytes: number;
  decode(buf: Buffer, offset: number): number;
  encode(x: number, buf: Buffer, offset: number): void;
}

const toInt16 = (x: number): number => Math.max(-32768, Math.min(32767, Math.round(x * 32768)));

/** The sample formats our outputs (and Imagicle's compliant inputs) are written in. */
function codecOf(info: WavInfo): SampleCodec | undefined {
  const tag = sampleTag(info);
  if (tag === 1 && info.bitsPerSample === 16) {
    return {
      bytes: 2,
      decode: (b, o) => b.readInt16LE(o) / 32768,
      encode: (x, b, o) => b.writeInt16LE(toInt16(x), o),
    };
  }
  if (tag === 1 && info.bitsPerSample === 8) {
    return {
      bytes: 1,
      decode: (b, o) => (b[o]! - 128) / 128,
      encode: (x, b, o) => (b[o] = Math.max(0, Math.min(255, Math.round(x * 128) + 128))),
    };
  }
  if (tag === 6 && info.bitsPerSample === 8) {
    return {
      bytes: 1,
      decode: (b, o) => decodeAlaw(b[o]!) / 32768,
      encode: (x, b, o) => (b[o] = encodeAlaw(x * 32768)),
    };
  }
  if (tag === 7 && info.bitsPerSample === 8) {
    return {
      bytes: 1,
      decode: (b, o) => decodeMulaw(b[o]!) / 32768,
      encode: (x, b, o) => (b[o] = encodeMulaw(x * 32768)),
    };
  }
  return undefined;
}

/** Whether maskWavInPlace can mask this file's samples. */
function canMaskWav(info: WavInfo): boolean {
  return codecOf(info) !== undefined && info.blockAlign === (info.bitsPerSample / 8) * info.channels;
}

/**
 * Masks `spans` in a WAV file in place. Returns false (and changes nothing) when its sample format is not one
 * it writes.
 */
export async function maskWavInPlace(file: string, spans: readonly MaskSpan[], kind: DtmfMaskKind): Promise<boolean> {
  const info = await readWavInfo(file);
  if (!info || !canMaskWav(info)) return false;
  const codec = codecOf(info)!;
  const fh = await open(file, 'r+');
  try {
    for (const span of spans) {
      const first = Math.max(0, span.startFrame);
      const last = Math.min(info.frames, span.endFrame);
      if (last <= first || span.channel >= info.channels) continue;
      const position = info.dataOffset + first * info.blockAlign;
      const buffer = Buffer.alloc((last - first) * info.blockAlign);
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, position);
      const frames = Math.floor(bytesRead / info.blockAlign);
      const samples = new Float64Array(frames);
      const at = (i: number): number => i * info.blockAlign + span.channel * codec.bytes;
      for (let i = 0; i < frames; i++) samples[i] = codec.decode(buffer, at(i));
      maskSamples(samples, first, span, info.sampleRate, kind);
      for (let i = 0; i < frames; i++) codec.encode(samples[i]!, buffer, at(i));
      await fh.write(buffer, 0, frames * info.blockAlign, position);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return true;
}
