/**
 * Writing WAV: size fields repaired in place, a plain canonical header, a
 * file rewritten with it, and sample-exact slices. Byte-range streams only:
 * recordings can be 2 GB, so nothing reads a whole file.
 */
import { open } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  WAVE_FORMAT_PCM,
  WAVE_FORMAT_EXTENSIBLE,
  type PlainFormatTag,
  type WavInfo,
  RIFF_HEADER_BYTES,
  CHUNK_HEADER_BYTES,
  UINT32_MAX,
  readWavInfo,
  bytesPerSampleOf,
  isPlausibleDataSize,
  realDataBytes,
  isPlainTag,
} from './wav.js';

/**
 * Fixes the RIFF and data size fields in place. When the data is not a whole
 * number of frames, or a bogus data size left bytes after the last whole
 * frame, the file is truncated after the last whole frame. An odd data chunk
 * at the end of the file gets its pad byte. Returns the re-read header.
 */
export async function repairWavSizes(path: string, info: WavInfo): Promise<WavInfo> {
  const handle = await open(path, 'r+');
  try {
    const fileSize = (await handle.stat()).size;
    const dataEnd = info.dataOffset + info.dataBytes;
    const keptSize = needsTruncation(info, fileSize) ? dataEnd : fileSize;
    const padByte = (info.dataBytes & 1) === 1 && keptSize === dataEnd ? 1 : 0;
    const riffSize = keptSize + padByte - 8;
    // Checked before touching the file: past 4 GiB no RIFF size is right.
    if (riffSize > UINT32_MAX) throw new RangeError(`WAV too large for 32-bit RIFF sizes: ${fileSize} bytes`);
    if (keptSize < fileSize) await handle.truncate(keptSize);
    if (padByte === 1) await handle.write(Buffer.alloc(1), 0, 1, dataEnd);
    await handle.write(uint32LE(riffSize), 0, 4, 4);
    await handle.write(uint32LE(info.dataBytes), 0, 4, info.dataOffset - 4);
  } finally {
    await handle.close();
  }
  const repaired = await readWavInfo(path);
  if (repaired === null) throw new Error(`WAV header unreadable after repair: ${path}`);
  return repaired;
}

/**
 * A data chunk that is not whole frames must lose its partial frame; so must
 * bytes after the last whole frame when the data size was bogus (they are a
 * partial frame, not a chunk anyone can find). A LIST chunk after a data
 * chunk with a plausible size is kept.
 */
function needsTruncation(info: WavInfo, fileSize: number): boolean {
  const available = Math.max(0, fileSize - info.dataOffset);
  const { raw } = realDataBytes(info.declaredDataSize, available, info.blockAlign);
  const raggedData = raw !== info.dataBytes;
  const junkAfterBogusData = !isPlausibleDataSize(info.declaredDataSize, available) && available > info.dataBytes;
  return raggedData || junkAfterBogusData;
}

function uint32LE(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value, 0);
  return buffer;
}

export interface PlainWavFormat {
  formatTag: PlainFormatTag;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
}

/**
 * A canonical header: RIFF, a 16-byte fmt chunk for PCM, or an 18-byte one
 * (cbSize 0) plus a `fact` chunk with the frame count for A-law/u-law, as the
 * WAV spec asks for non-PCM formats; then the data chunk header. The RIFF
 * size counts the pad byte an odd data chunk needs; the writer must add it.
 */
export function plainWavHeader(format: PlainWavFormat, dataBytes: number): Buffer {
  const { formatTag, channels, sampleRate, bitsPerSample } = format;
  const blockAlign = channels * Math.ceil(bitsPerSample / 8);
  const isPcm = formatTag === WAVE_FORMAT_PCM;
  const fmtBytes = isPcm ? 16 : 18;
  const factChunkBytes = isPcm ? 0 : CHUNK_HEADER_BYTES + 4;
  const headerBytes = RIFF_HEADER_BYTES + CHUNK_HEADER_BYTES + fmtBytes + factChunkBytes + CHUNK_HEADER_BYTES;
  const riffSize = headerBytes - 8 + dataBytes + (dataBytes & 1);
  if (riffSize > UINT32_MAX) throw new RangeError(`WAV data too large for 32-bit RIFF sizes: ${dataBytes} bytes`);

  const header = Buffer.alloc(headerBytes);
  let at = 0;
  at += header.write('RIFF', at, 'latin1');
  at = header.writeUInt32LE(riffSize, at);
  at += header.write('WAVE', at, 'latin1');
  at += header.write('fmt ', at, 'latin1');
  at = header.writeUInt32LE(fmtBytes, at);
  at = header.writeUInt16LE(formatTag, at);
  at = header.writeUInt16LE(channels, at);
  at = header.writeUInt32LE(sampleRate, at);
  at = header.writeUInt32LE(sampleRate * blockAlign, at);
  at = header.writeUInt16LE(blockAlign, at);
  at = header.writeUInt16LE(bitsPerSample, at);
  if (!isPcm) {
    at = header.writeUInt16LE(0, at); // cbSize
    at += header.write('fact', at, 'latin1');
    at = header.writeUInt32LE(4, at);
    at = header.writeUInt32LE(Math.floor(dataBytes / blockAlign), at);
  }
  at += header.write('data', at, 'latin1');
  header.writeUInt32LE(dataBytes, at);
  return header;
}

/** The plain format a WAV's samples can be rewritten with, or null (float, GSM, G.726, ...). */
export function plainFormatOf(info: WavInfo): PlainWavFormat | null {
  const tag = info.formatTag === WAVE_FORMAT_EXTENSIBLE ? info.effectiveFormatTag : info.formatTag;
  if (!isPlainTag(tag)) return null;
  return { formatTag: tag, channels: info.channels, sampleRate: info.sampleRate, bitsPerSample: info.bitsPerSample };
}

/**
 * The lossless header rewrite: a canonical plain header (tag 1, 6 or 7, block
 * align and byte rate from the channels and sample size, a fresh `fact` for
 * A-law/u-law) followed by the same sample bytes, whole frames only. It fixes
 * a WAVE_FORMAT_EXTENSIBLE header around PCM/G.711, wrong size fields, a
 * wrong block align or byte rate, and a stale `fact` chunk, all at once.
 * Chunks after the data (LIST, ...) are not copied.
 */
export async function rewritePlainWav(src: string, info: WavInfo, dest: string): Promise<void> {
  const format = plainFormatOf(info);
  if (format === null) {
    throw new Error(`cannot rewrite WAV format tag 0x${info.effectiveFormatTag.toString(16)} as a plain header`);
  }
  const blockAlign = format.channels * bytesPerSampleOf(format.bitsPerSample);
  const available = Math.max(0, info.fileSize - info.dataOffset);
  const { whole } = realDataBytes(info.declaredDataSize, available, blockAlign);
  const header = plainWavHeader(format, whole);
  await pipeline(Readable.from(sliceBytes(src, header, info.dataOffset, whole)), createWriteStream(dest));
}

/**
 * Writes a new WAV with a plain header holding exactly the frames
 * [startFrame, startFrame + frameCount) of `src`, streamed from disk.
 */
export async function writeWavSlice(
  src: string,
  info: WavInfo,
  startFrame: number,
  frameCount: number,
  dest: string,
): Promise<void> {
  const format = plainFormatOf(info);
  if (format === null) throw new Error(`cannot slice WAV format tag 0x${info.effectiveFormatTag.toString(16)}`);
  assertFrameRange(info, startFrame, frameCount);
  const byteCount = frameCount * info.blockAlign;
  const start = info.dataOffset + startFrame * info.blockAlign;
  const header = plainWavHeader(format, byteCount);
  await pipeline(Readable.from(sliceBytes(src, header, start, byteCount)), createWriteStream(dest));
}

async function* sliceBytes(src: string, header: Buffer, start: number, byteCount: number): AsyncGenerator<Buffer> {
  yield header;
  // createReadStream's `end` is inclusive, and an empty range is not expressible.
  if (byteCount > 0) {
    for await (const chunk of createReadStream(src, { start, end: start + byteCount - 1 })) {
      yield chunk as Buffer;
    }
  }
  if ((byteCount & 1) === 1) yield Buffer.alloc(1);
}

function assertFrameRange(info: WavInfo, startFrame: number, frameCount: number): void {
  const valid =
    Number.isSafeInteger(startFrame) &&
    Number.isSafeInteger(frameCount) &&
    startFrame >= 0 &&
    frameCount >= 0 &&
    startFrame + frameCount <= info.frames;
  if (!valid) throw new RangeError(`frames [${startFrame}, +${frameCount}) outside 0..${info.frames}`);
}
