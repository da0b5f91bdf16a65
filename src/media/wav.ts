/**
 * RIFF/WAVE header reading and repair, exact duration, sample-exact slicing
 * and silence search.
 *
 * Everything here works with positioned reads on a FileHandle or with byte
 * range streams: recordings can be 2 GB, so no function reads a whole file.
 *
 * RF64/BW64 (the 64-bit variants with a `ds64` chunk) are deliberately not
 * parsed: `readWavInfo` returns null for them, so the caller treats them like
 * any other non-compliant input and transcodes them.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decodeAlaw, decodeMulaw } from './g711.js';

export const WAVE_FORMAT_PCM = 0x0001;
export const WAVE_FORMAT_IEEE_FLOAT = 0x0003;
export const WAVE_FORMAT_ALAW = 0x0006;
export const WAVE_FORMAT_MULAW = 0x0007;
export const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

export type PlainFormatTag = 1 | 6 | 7;

export interface WavInfo {
  /** The fmt chunk's tag (1 PCM, 3 float, 6 A-law, 7 u-law, 0xFFFE extensible, 0x31 GSM, ...). */
  formatTag: number;
  /** For 0xFFFE: the tag in the first 2 bytes of the SubFormat GUID; else formatTag. */
  effectiveFormatTag: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  blockAlign: number;
  byteRate: number;
  /** File offset of the first sample byte. */
  dataOffset: number;
  /** The RIFF size field as written (streaming recorders write 0 or 0xFFFFFFFF). */
  declaredRiffSize: number;
  /** The data chunk size field as written. */
  declaredDataSize: number;
  /** Real sample bytes, whole frames only (see `realDataBytes`). */
  dataBytes: number;
  /** dataBytes / blockAlign. */
  frames: number;
  fileSize: number;
  /** RIFF size == fileSize - 8 (pad byte rule allowed) and data size == dataBytes. */
  sizesConsistent: boolean;
  /** Bytes after the data chunk (and its pad byte), e.g. a LIST chunk; 0 when none. */
  trailingBytes: number;
  /** formatTag is 1, 6 or 7 (a header Imagicle accepts as is). */
  plainHeader: boolean;
  /** The `fact` chunk's sample count (per channel), when the file has one. */
  factSamples: number | undefined;
  /** ADPCM and GSM: samples per channel in one block (the fmt extension's wSamplesPerBlock). */
  samplesPerBlock: number | undefined;
  /** The data bytes the file really holds before whole blocks are counted (declared size when plausible). */
  rawDataBytes: number;
  /**
   * For PCM, A-law and u-law: what makes the fmt chunk disagree with itself
   * (block align, byte rate, a sample rate outside 8000..48000 Hz). Empty when
   * it is self-consistent, and for other formats.
   */
  headerProblems: string[];
}

/** The sample rates a header may declare and still be passed through. */
export const MIN_COMPLIANT_RATE = 8000;
export const MAX_COMPLIANT_RATE = 48000;

const RIFF_HEADER_BYTES = 12;
const CHUNK_HEADER_BYTES = 8;
const MIN_FMT_BYTES = 16;
/** Large enough for WAVE_FORMAT_EXTENSIBLE (40) and codec extras; bigger fmt chunks are read only this far. */
const MAX_FMT_BYTES = 1024;
/** Bounds the chunk walk on hostile files made of millions of tiny chunks. */
const MAX_CHUNKS = 10_000;
const UINT32_MAX = 0xffffffff;
const SCAN_CHUNK_BYTES = 1024 * 1024;

interface FmtFields {
  formatTag: number;
  effectiveFormatTag: number;
  channels: number;
  sampleRate: number;
  byteRate: number;
  blockAlign: number;
  bitsPerSample: number;
  samplesPerBlock: number | undefined;
}

interface ChunkLayout {
  declaredRiffSize: number;
  fmt: FmtFields;
  dataOffset: number;
  declaredDataSize: number;
  factSamples: number | undefined;
}

/** Tags whose fmt extension carries wSamplesPerBlock: MS ADPCM, IMA ADPCM, GSM 6.10. */
const BLOCK_CODEC_TAGS: ReadonlySet<number> = new Set([0x0002, 0x0011, 0x0031]);

/**
 * Reads a WAV file's header by walking its chunks with positioned reads.
 * Returns null when the file is not RIFF/WAVE (RF64/BW64 included), lacks a
 * usable fmt or data chunk, or is too short: junk input never throws.
 * I/O errors (missing file, permissions) do propagate.
 */
export async function readWavInfo(path: string): Promise<WavInfo | null> {
  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const layout = await readChunkLayout(handle, fileSize);
    return layout === null ? null : describe(layout, fileSize);
  } finally {
    await handle.close();
  }
}

/** The exact duration: whole sample frames over the sample rate. */
export function wavDurationSeconds(info: WavInfo): number {
  return info.frames / info.sampleRate;
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

async function readChunkLayout(handle: FileHandle, fileSize: number): Promise<ChunkLayout | null> {
  const riff = await readAt(handle, 0, RIFF_HEADER_BYTES);
  if (riff.length < RIFF_HEADER_BYTES) return null;
  if (riff.toString('latin1', 0, 4) !== 'RIFF' || riff.toString('latin1', 8, 12) !== 'WAVE') return null;
  const declaredRiffSize = riff.readUInt32LE(4);

  let fmt: FmtFields | null = null;
  let data: { offset: number; declaredSize: number } | null = null;
  let factSamples: number | undefined;
  let position = RIFF_HEADER_BYTES;
  for (let count = 0; count < MAX_CHUNKS && position + CHUNK_HEADER_BYTES <= fileSize; count += 1) {
    const header = await readAt(handle, position, CHUNK_HEADER_BYTES);
    if (header.length < CHUNK_HEADER_BYTES) break;
    const id = header.toString('latin1', 0, 4);
    const size = header.readUInt32LE(4);
    const bodyOffset = position + CHUNK_HEADER_BYTES;
    if (id === 'fmt ') {
      fmt = parseFmt(await readAt(handle, bodyOffset, Math.min(size, MAX_FMT_BYTES)));
      if (fmt === null) return null;
    } else if (id === 'data') {
      data = { offset: bodyOffset, declaredSize: size };
    } else if (id === 'fact' && size >= 4) {
      const body = await readAt(handle, bodyOffset, 4);
      if (body.length === 4) factSamples = body.readUInt32LE(0);
    }
    if (fmt !== null && data !== null) break;
    // The data chunk's size is only trusted for walking past it when it fits:
    // streaming recorders write 0 or 0xFFFFFFFF there.
    const end = bodyOffset + size + (size & 1);
    if (end > fileSize) break;
    position = end;
  }
  if (fmt === null || data === null) return null;
  return { declaredRiffSize, fmt, dataOffset: data.offset, declaredDataSize: data.declaredSize, factSamples };
}

function parseFmt(body: Buffer): FmtFields | null {
  if (body.length < MIN_FMT_BYTES) return null;
  const formatTag = body.readUInt16LE(0);
  const fields: FmtFields = {
    formatTag,
    effectiveFormatTag: formatTag,
    channels: body.readUInt16LE(2),
    sampleRate: body.readUInt32LE(4),
    byteRate: body.readUInt32LE(8),
    blockAlign: body.readUInt16LE(12),
    bitsPerSample: body.readUInt16LE(14),
    samplesPerBlock: BLOCK_CODEC_TAGS.has(formatTag) && body.length >= 20 ? body.readUInt16LE(18) : undefined,
  };
  if (fields.channels === 0 || fields.sampleRate === 0 || fields.blockAlign === 0) return null;
  // WAVEFORMATEXTENSIBLE: cbSize(2) validBits(2) channelMask(4) then the
  // SubFormat GUID, whose first two bytes are the real format tag.
  const subFormatOffset = 24;
  if (formatTag === WAVE_FORMAT_EXTENSIBLE && body.length >= subFormatOffset + 2) {
    fields.effectiveFormatTag = body.readUInt16LE(subFormatOffset);
  }
  return fields;
}

/**
 * The real number of sample bytes: the declared data size when it is
 * plausible, else everything the file holds after the data header; always
 * whole frames. Zero and 0xFFFFFFFF are what streaming writers leave when
 * they could not seek back, so they are never taken literally.
 */
function realDataBytes(declared: number, available: number, blockAlign: number): { raw: number; whole: number } {
  const plausible = isPlausibleDataSize(declared, available);
  const raw = plausible ? declared : available;
  return { raw, whole: raw - (raw % blockAlign) };
}

function isPlausibleDataSize(declared: number, available: number): boolean {
  return declared !== 0 && declared !== UINT32_MAX && declared <= available;
}

function describe(layout: ChunkLayout, fileSize: number): WavInfo {
  const { fmt, dataOffset, declaredDataSize, declaredRiffSize, factSamples } = layout;
  const available = Math.max(0, fileSize - dataOffset);
  const { whole: dataBytes, raw: rawDataBytes } = realDataBytes(declaredDataSize, available, fmt.blockAlign);
  const plausible = isPlausibleDataSize(declaredDataSize, available);
  const dataChunkEnd = plausible ? dataOffset + declaredDataSize + (declaredDataSize & 1) : dataOffset + dataBytes;
  return {
    ...fmt,
    dataOffset,
    declaredRiffSize,
    declaredDataSize,
    dataBytes,
    frames: dataBytes / fmt.blockAlign,
    fileSize,
    sizesConsistent:
      declaredDataSize === dataBytes && riffSizeMatches(declaredRiffSize, fileSize, dataOffset + dataBytes, dataBytes),
    trailingBytes: Math.max(0, fileSize - dataChunkEnd),
    plainHeader: isPlainTag(fmt.formatTag),
    factSamples,
    rawDataBytes,
    headerProblems: headerProblemsOf(fmt),
  };
}

/** Bytes per sample of a plain format: 1 for 8-bit PCM, A-law and u-law, 2 for 16-bit, ... */
function bytesPerSampleOf(bitsPerSample: number): number {
  return Math.ceil(bitsPerSample / 8);
}

/** Where a PCM/A-law/u-law fmt chunk (plain or extensible) contradicts itself; [] for other codecs. */
function headerProblemsOf(fmt: FmtFields): string[] {
  const tag = fmt.formatTag === WAVE_FORMAT_EXTENSIBLE ? fmt.effectiveFormatTag : fmt.formatTag;
  if (!isPlainTag(tag) || fmt.bitsPerSample === 0) return [];
  const problems: string[] = [];
  const blockAlign = fmt.channels * bytesPerSampleOf(fmt.bitsPerSample);
  if (fmt.blockAlign !== blockAlign) {
    const need = `${fmt.channels} × ${fmt.bitsPerSample}-bit samples need ${blockAlign}`;
    problems.push(`block align ${fmt.blockAlign} (${need})`);
  }
  if (fmt.byteRate !== blockAlign * fmt.sampleRate) {
    const need = `${blockAlign} × ${fmt.sampleRate} Hz is ${blockAlign * fmt.sampleRate}`;
    problems.push(`byte rate ${fmt.byteRate} (${need})`);
  }
  if (fmt.sampleRate < MIN_COMPLIANT_RATE || fmt.sampleRate > MAX_COMPLIANT_RATE) {
    problems.push(`sample rate ${fmt.sampleRate} Hz (outside ${MIN_COMPLIANT_RATE}..${MAX_COMPLIANT_RATE})`);
  }
  return problems;
}

/**
 * RIFF size must be fileSize - 8. An odd data chunk should be followed by a
 * pad byte; a writer that counted the pad but did not write it (data ends at
 * EOF) is one byte over, which readers accept.
 */
function riffSizeMatches(declaredRiffSize: number, fileSize: number, dataEnd: number, dataBytes: number): boolean {
  if (declaredRiffSize === fileSize - 8) return true;
  return (dataBytes & 1) === 1 && dataEnd === fileSize && declaredRiffSize === fileSize - 7;
}

function isPlainTag(tag: number): tag is PlainFormatTag {
  return tag === WAVE_FORMAT_PCM || tag === WAVE_FORMAT_ALAW || tag === WAVE_FORMAT_MULAW;
}

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
