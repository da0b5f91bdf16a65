/**
 * The quietest stretch of a WAV in a window, for cutting a long recording
 * where nobody speaks (split.ts). Works on positioned reads: recordings can
 * be 2 GB, so the window is scanned in chunks, never read whole.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { decodeAlaw, decodeMulaw } from './g711.js';
import {
  WAVE_FORMAT_ALAW,
  WAVE_FORMAT_EXTENSIBLE,
  WAVE_FORMAT_IEEE_FLOAT,
  WAVE_FORMAT_MULAW,
  WAVE_FORMAT_PCM,
  type WavInfo,
} from './wav.js';

const SCAN_CHUNK_BYTES = 1024 * 1024;

/** Sum of the squares of the samples in buffer[from, to), each scaled to [-1, 1]. */
type SquareSummer = (buffer: Buffer, from: number, to: number) => number;

interface SampleReader {
  bytesPerSample: number;
  sumSquares: SquareSummer;
}

const ALAW_SQUARES = buildSquareTable(decodeAlaw);
const MULAW_SQUARES = buildSquareTable(decodeMulaw);
const U8_SQUARES = buildSquareTable((byte) => (byte - 128) * 256);

/** Squares of the 256 possible byte samples, from a decoder to 16-bit linear. */
function buildSquareTable(decode: (byte: number) => number): Float64Array {
  const table = new Float64Array(256);
  for (let byte = 0; byte < 256; byte += 1) table[byte] = (decode(byte) / 32768) ** 2;
  return table;
}

function byteTableSummer(table: Float64Array): SquareSummer {
  return (buffer, from, to) => {
    let sum = 0;
    for (let at = from; at < to; at += 1) sum += table[buffer[at] ?? 0] ?? 0;
    return sum;
  };
}

function linearSummer(bytesPerSample: number, read: (buffer: Buffer, at: number) => number): SquareSummer {
  return (buffer, from, to) => {
    let sum = 0;
    for (let at = from; at < to; at += bytesPerSample) {
      const sample = read(buffer, at);
      sum += sample * sample;
    }
    return sum;
  };
}

function sampleReaderFor(info: WavInfo): SampleReader | null {
  const tag = info.formatTag === WAVE_FORMAT_EXTENSIBLE ? info.effectiveFormatTag : info.formatTag;
  const bytesPerSample = info.blockAlign / info.channels;
  const summer = squareSummerFor(tag, bytesPerSample);
  return summer === null ? null : { bytesPerSample, sumSquares: summer };
}

function squareSummerFor(tag: number, bytesPerSample: number): SquareSummer | null {
  if (tag === WAVE_FORMAT_ALAW && bytesPerSample === 1) return byteTableSummer(ALAW_SQUARES);
  if (tag === WAVE_FORMAT_MULAW && bytesPerSample === 1) return byteTableSummer(MULAW_SQUARES);
  if (tag === WAVE_FORMAT_IEEE_FLOAT && bytesPerSample === 4) return linearSummer(4, (b, at) => b.readFloatLE(at));
  if (tag !== WAVE_FORMAT_PCM) return null;
  switch (bytesPerSample) {
    case 1:
      return byteTableSummer(U8_SQUARES);
    case 2:
      return linearSummer(2, (b, at) => b.readInt16LE(at) / 0x8000);
    case 3:
      return linearSummer(3, (b, at) => b.readIntLE(at, 3) / 0x800000);
    case 4:
      return linearSummer(4, (b, at) => b.readInt32LE(at) / 0x80000000);
    default:
      return null;
  }
}

/**
 * Finds, within [fromFrame, toFrame), the start of the window (default 20 ms)
 * with the lowest RMS over all channels; windows are aligned to fromFrame and
 * the first quietest one wins. Used to cut long recordings in a silence.
 * Decodes PCM u8/s16/s24/s32, float32, A-law and u-law; throws for others.
 * The range is read in chunks of about 1 MiB.
 */
export async function quietestFrame(
  path: string,
  info: WavInfo,
  fromFrame: number,
  toFrame: number,
  windowMs = 20,
): Promise<{ frame: number; rms: number }> {
  const reader = sampleReaderFor(info);
  if (reader === null) throw new Error(`cannot decode WAV format tag 0x${info.effectiveFormatTag.toString(16)}`);
  const end = Math.min(toFrame, info.frames);
  if (!Number.isSafeInteger(fromFrame) || fromFrame < 0 || fromFrame >= end) {
    throw new RangeError(`empty frame range [${fromFrame}, ${toFrame}) in ${info.frames} frames`);
  }
  const windowFrames = Math.max(1, Math.round((info.sampleRate * windowMs) / 1000));
  const handle = await open(path, 'r');
  try {
    return await scanWindows(handle, info, reader, fromFrame, end, windowFrames);
  } finally {
    await handle.close();
  }
}

async function scanWindows(
  handle: FileHandle,
  info: WavInfo,
  reader: SampleReader,
  fromFrame: number,
  endFrame: number,
  windowFrames: number,
): Promise<{ frame: number; rms: number }> {
  // A range shorter than one window is judged as a single (short) window;
  // otherwise the ragged tail is ignored so every window weighs the same.
  const window = Math.min(windowFrames, endFrame - fromFrame);
  const windowCount = Math.floor((endFrame - fromFrame) / window);
  const windowBytes = window * info.blockAlign;
  const samplesPerWindow = windowBytes / reader.bytesPerSample;
  const windowsPerRead = Math.max(1, Math.floor(SCAN_CHUNK_BYTES / windowBytes));
  const buffer = Buffer.alloc(windowsPerRead * windowBytes);
  let best = { frame: fromFrame, rms: Number.POSITIVE_INFINITY };
  for (let first = 0; first < windowCount; first += windowsPerRead) {
    const count = Math.min(windowsPerRead, windowCount - first);
    const position = info.dataOffset + (fromFrame + first * window) * info.blockAlign;
    const { bytesRead } = await handle.read(buffer, 0, count * windowBytes, position);
    for (let w = 0; w < count && (w + 1) * windowBytes <= bytesRead; w += 1) {
      const from = w * windowBytes;
      const rms = Math.sqrt(reader.sumSquares(buffer, from, from + windowBytes) / samplesPerWindow);
      if (rms < best.rms) best = { frame: fromFrame + (first + w) * window, rms };
    }
  }
  return best;
}
