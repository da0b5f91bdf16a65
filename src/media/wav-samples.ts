/**
 * A WAV's samples, streamed: blocks of whole frames read into one reused
 * buffer (memory does not grow with the file), as raw bytes or decoded to
 * interleaved floats at full scale ±1 (PCM 8/16/24/32, float 32, A-law,
 * u-law). The stereo analysis, the level meter and the waveform pictures
 * read outputs through here.
 */
import { open } from 'node:fs/promises';
import { readWavInfo, type WavInfo } from './wav.js';
import { decodeAlaw, decodeMulaw } from './g711.js';

const ALAW = Float32Array.from({ length: 256 }, (_, i) => decodeAlaw(i) / 32768);
const MULAW = Float32Array.from({ length: 256 }, (_, i) => decodeMulaw(i) / 32768);

type Decoder = (buf: Buffer, samples: number, out: Float32Array) => void;

/** Int16 samples of a buffer, through a typed-array view when the buffer is aligned (the usual case). */
export function int16View(buf: Buffer, samples: number): Int16Array {
  if (buf.byteOffset % 2 === 0) return new Int16Array(buf.buffer, buf.byteOffset, samples);
  return new Int16Array(Uint8Array.prototype.slice.call(buf, 0, samples * 2).buffer);
}

function decoderFor(formatTag: number, bits: number): Decoder | undefined {
  if (formatTag === 1 && bits === 16) {
    return (buf, n, out) => {
      const v = int16View(buf, n);
      for (let i = 0; i < n; i++) out[i] = v[i]! / 32768;
    };
  }
  if (formatTag === 1 && bits === 8) {
    return (buf, n, out) => {
      for (let i = 0; i < n; i++) out[i] = (buf[i]! - 128) / 128;
    };
  }
  if (formatTag === 1 && bits === 24) {
    return (buf, n, out) => {
      for (let i = 0; i < n; i++) out[i] = buf.readIntLE(i * 3, 3) / 8_388_608;
    };
  }
  if (formatTag === 1 && bits === 32) {
    return (buf, n, out) => {
      for (let i = 0; i < n; i++) out[i] = buf.readInt32LE(i * 4) / 2_147_483_648;
    };
  }
  if (formatTag === 3 && bits === 32) {
    return (buf, n, out) => {
      for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(i * 4);
    };
  }
  const table = formatTag === 6 && bits === 8 ? ALAW : formatTag === 7 && bits === 8 ? MULAW : undefined;
  if (!table) return undefined;
  return (buf, n, out) => {
    for (let i = 0; i < n; i++) out[i] = table[buf[i]!]!;
  };
}

/** The shape of a WAV's samples, given to a reader before the first block. */
export interface SampleFormat {
  channels: number;
  sampleRate: number;
  frames: number;
}

/** Bytes read at a time: whole frames of up to this size, into one reused buffer. */
const BLOCK_BYTES = 1024 * 1024;

export const sampleTag = (info: WavInfo): number =>
  info.formatTag === 0xfffe ? info.effectiveFormatTag : info.formatTag;

export async function readAnalysableWav(file: string): Promise<WavInfo> {
  const info = await readWavInfo(file);
  if (!info) throw new Error('not a readable WAV file');
  const tag = sampleTag(info);
  if (!decoderFor(tag, info.bitsPerSample) || info.blockAlign !== (info.bitsPerSample / 8) * info.channels) {
    throw new Error(`WAV format tag ${tag} with ${info.bitsPerSample} bits is not analysed`);
  }
  return info;
}

/**
 * Streams a WAV file's data chunk as blocks of whole frames (the buffer is reused between calls). Memory does not
 * grow with the file; the event loop gets a turn between blocks.
 */
export async function streamWavBlocks(
  file: string,
  info: WavInfo,
  start: (format: SampleFormat) => void,
  visit: (block: Buffer, frames: number) => void,
  signal: AbortSignal | undefined,
): Promise<SampleFormat> {
  const format = { channels: info.channels, sampleRate: info.sampleRate, frames: info.frames };
  start(format);
  const frameBytes = info.blockAlign;
  const buffer = Buffer.allocUnsafe(Math.max(1, Math.floor(BLOCK_BYTES / frameBytes)) * frameBytes);
  const end = info.dataOffset + Math.floor(info.dataBytes / frameBytes) * frameBytes;
  const fh = await open(file, 'r');
  try {
    for (let position = info.dataOffset; position < end;) {
      signal?.throwIfAborted();
      const want = Math.min(buffer.length, end - position);
      const { bytesRead } = await fh.read(buffer, 0, want, position);
      const frames = Math.floor(bytesRead / frameBytes);
      if (frames === 0) break; // The file is shorter than its header says.
      visit(buffer.subarray(0, frames * frameBytes), frames);
      position += frames * frameBytes;
    }
  } finally {
    await fh.close();
  }
  return format;
}

/**
 * Streams a WAV file's samples (PCM 8/16/24/32, float 32, A-law, u-law) as
 * blocks of interleaved floats (full scale ±1), whole frames only. Memory
 * does not grow with the file: one block at a time (the array is reused).
 */
export async function streamWavSamples(
  file: string,
  start: (format: SampleFormat) => void,
  visit: (samples: Float32Array, frames: number) => void,
  signal?: AbortSignal,
): Promise<SampleFormat> {
  const info = await readAnalysableWav(file);
  const decode = decoderFor(sampleTag(info), info.bitsPerSample)!;
  let samples = new Float32Array(0);
  return streamWavBlocks(
    file,
    info,
    start,
    (block, frames) => {
      const n = frames * info.channels;
      if (samples.length < n) samples = new Float32Array(n);
      decode(block, n, samples);
      visit(samples, frames);
    },
    signal,
  );
}
