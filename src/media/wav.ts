/**
 * RIFF/WAVE header reading and exact duration (repair and slicing are
 * wav-write.ts's, the silence search wav-quiet.ts's).
 *
 * Everything here works with positioned reads on a FileHandle or with byte
 * range streams: recordings can be 2 GB, so no function reads a whole file.
 *
 * RF64/BW64 (the 64-bit variants with a `ds64` chunk) are deliberately not
 * parsed: `readWavInfo` returns null for them, so the caller treats them like
 * any other non-compliant input and transcodes them.
 */
import { open, type FileHandle } from 'node:fs/promises';

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
  /** For 0xFFFE with a complete extension: its fields (see `ExtensibleFields`); else undefined. */
  extensible: ExtensibleFields | undefined;
  /** The fmt chunk comes before the data chunk (ffmpeg refuses a data chunk it meets first). */
  fmtBeforeData: boolean;
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
/** The WAVEFORMATEXTENSIBLE extension of a 0xFFFE fmt chunk. */
interface ExtensibleFields {
  validBitsPerSample: number;
  channelMask: number;
  /** The SubFormat GUID is the standard xxxxxxxx-0000-0010-8000-00AA00389B71 (its first 2 bytes a format tag). */
  standardSubFormat: boolean;
}

export const MIN_COMPLIANT_RATE = 8000;
export const MAX_COMPLIANT_RATE = 48000;

export const RIFF_HEADER_BYTES = 12;
export const CHUNK_HEADER_BYTES = 8;
const MIN_FMT_BYTES = 16;
/** Large enough for WAVE_FORMAT_EXTENSIBLE (40) and codec extras; bigger fmt chunks are read only this far. */
const MAX_FMT_BYTES = 1024;
/** Bounds the chunk walk on hostile files made of millions of tiny chunks. */
const MAX_CHUNKS = 10_000;
export const UINT32_MAX = 0xffffffff;

interface FmtFields {
  formatTag: number;
  effectiveFormatTag: number;
  extensible: ExtensibleFields | undefined;
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
  fmtBeforeData: boolean;
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
  let fmtBeforeData = false;
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
      fmtBeforeData = data === null;
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
  return {
    declaredRiffSize,
    fmt,
    fmtBeforeData,
    dataOffset: data.offset,
    declaredDataSize: data.declaredSize,
    factSamples,
  };
}

/** Bytes 2..15 of KSDATAFORMAT_SUBTYPE_PCM and its siblings (-0000-0010-8000-00AA00389B71). */
const STANDARD_GUID_TAIL = Buffer.from([0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);

function parseFmt(body: Buffer): FmtFields | null {
  if (body.length < MIN_FMT_BYTES) return null;
  const formatTag = body.readUInt16LE(0);
  const fields: FmtFields = {
    formatTag,
    effectiveFormatTag: formatTag,
    extensible: undefined,
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
  if (formatTag === WAVE_FORMAT_EXTENSIBLE && body.length >= subFormatOffset + STANDARD_GUID_TAIL.length + 2) {
    fields.extensible = {
      validBitsPerSample: body.readUInt16LE(18),
      channelMask: body.readUInt32LE(20),
      standardSubFormat: body.subarray(subFormatOffset + 2, subFormatOffset + 16).equals(STANDARD_GUID_TAIL),
    };
  }
  return fields;
}

/**
 * The real number of sample bytes: the declared data size when it is
 * plausible, else everything the file holds after the data header; always
 * whole frames. Zero and 0xFFFFFFFF are what streaming writers leave when
 * they could not seek back, so they are never taken literally.
 */
export function realDataBytes(declared: number, available: number, blockAlign: number): { raw: number; whole: number } {
  const plausible = isPlausibleDataSize(declared, available);
  const raw = plausible ? declared : available;
  return { raw, whole: raw - (raw % blockAlign) };
}

export function isPlausibleDataSize(declared: number, available: number): boolean {
  return declared !== 0 && declared !== UINT32_MAX && declared <= available;
}

function describe(layout: ChunkLayout, fileSize: number): WavInfo {
  const { fmt, fmtBeforeData, dataOffset, declaredDataSize, declaredRiffSize, factSamples } = layout;
  const available = Math.max(0, fileSize - dataOffset);
  const { whole: dataBytes, raw: rawDataBytes } = realDataBytes(declaredDataSize, available, fmt.blockAlign);
  const plausible = isPlausibleDataSize(declaredDataSize, available);
  const dataChunkEnd = plausible ? dataOffset + declaredDataSize + (declaredDataSize & 1) : dataOffset + dataBytes;
  return {
    ...fmt,
    fmtBeforeData,
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
export function bytesPerSampleOf(bitsPerSample: number): number {
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

export function isPlainTag(tag: number): tag is PlainFormatTag {
  return tag === WAVE_FORMAT_PCM || tag === WAVE_FORMAT_ALAW || tag === WAVE_FORMAT_MULAW;
}
