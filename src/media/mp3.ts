/**
 * MPEG audio frame scanning: exact duration (frames × samples per frame minus
 * the encoder delay and padding of a LAME/Info tag) and frame offsets for
 * frame-exact splitting.
 *
 * Files are read through a 1 MiB window, frame by frame, so memory stays
 * bounded however large the recording is.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import {
  HEADER_BYTES,
  parseMp3FrameHeader,
  shapeOf,
  matchesShape,
  parseInfoFrame,
  type MpegVersion,
  type MpegLayer,
  type Mp3FrameHeader,
  type StreamShape,
  type InfoFrame,
} from './mp3-frame.js';

export interface Mp3Info {
  /** Size of the leading ID3v2 tag(s); 0 when none. */
  id3v2Bytes: number;
  /** How many ID3v2 tags are chained at the start (a compliant file has one, rarely two). */
  id3v2Tags: number;
  /** Offset of the first audio frame (after the Xing/Info/VBRI frame when present). */
  firstFrameOffset: number;
  /** End of the last complete frame; ID3v1/APE tags and trailing junk are excluded. */
  audioEnd: number;
  /** Audio frames, excluding the Xing/Info/VBRI frame. */
  frames: number;
  sampleRate: number;
  channels: 1 | 2;
  samplesPerFrame: number;
  version: MpegVersion;
  layer: MpegLayer;
  /** A Xing/Info (or VBRI) frame was found. */
  hasInfoTag: boolean;
  /** The audio frames the Xing/Info or VBRI tag declares (a cut file holds fewer); none when it does not say. */
  declaredFrames: number | undefined;
  /** From the LAME extension of the Info tag (12 bits), else 0. */
  encoderDelay: number;
  /** From the LAME extension of the Info tag (12 bits), else 0. */
  encoderPadding: number;
  /** frames × samplesPerFrame − encoderDelay − encoderPadding (never negative). */
  totalSamples: number;
  /** totalSamples / sampleRate. */
  durationSeconds: number;
  /** Audio frame bytes over the frames' playing time. */
  averageBitrateKbps: number;
}

/**
 * More ID3v2 tags than this before the first frame is no tagger's doing;
 * Imagicle (and ffmpeg) give up on a long chain, so the gateway removes them.
 */
export const MAX_LEADING_ID3V2_TAGS = 4;

const WINDOW_BYTES = 1024 * 1024;
/** How far past the ID3v2 tag the first frame may start (stray bytes, a tag with a wrong size). */
const MAX_LEADING_JUNK = 64 * 1024;
/** How far junk between frames is skipped before the stream is considered over. */
const MAX_RESYNC = 64 * 1024;
/** Frames that must chain at the start before a file counts as MPEG audio. */
const MIN_CHAINED_FRAMES = 3;
const ID3V2_HEADER_BYTES = 10;

/** A read-through cache of one ~1 MiB stretch of a file. */
class FileWindow {
  private buffer = Buffer.alloc(0);
  private start = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  /** The bytes [offset, offset + length) clipped to EOF, reading only when not cached. */
  async bytes(offset: number, length: number): Promise<Buffer> {
    return this.cached(offset, length) ?? (await this.fill(offset, length));
  }

  /** Like bytes(), without I/O: undefined when the range is not in memory. */
  cached(offset: number, length: number): Buffer | undefined {
    const end = Math.min(offset + length, this.size);
    if (offset < this.start || end > this.start + this.buffer.length) return undefined;
    return this.buffer.subarray(offset - this.start, end - this.start);
  }

  private async fill(offset: number, length: number): Promise<Buffer> {
    // A fresh buffer each time: slices handed out earlier stay valid.
    const buffer = Buffer.allocUnsafe(Math.max(WINDOW_BYTES, length));
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, offset);
    this.buffer = buffer.subarray(0, bytesRead);
    this.start = offset;
    return this.buffer.subarray(0, Math.min(length, bytesRead));
  }
}

async function headerAt(window: FileWindow, offset: number): Promise<Mp3FrameHeader | null> {
  return parseMp3FrameHeader(await window.bytes(offset, HEADER_BYTES), 0);
}

/** The header in `bytes` when it is a frame of the stream that ends by `end`, else null. */
function streamFrame(bytes: Buffer, offset: number, end: number, shape: StreamShape): Mp3FrameHeader | null {
  const header = parseMp3FrameHeader(bytes, 0);
  if (header === null || !matchesShape(header, shape) || offset + header.frameBytes > end) return null;
  return header;
}

/** A frame of the stream at `offset` that ends by `end`, or null. */
async function frameAt(
  window: FileWindow,
  offset: number,
  end: number,
  shape: StreamShape,
): Promise<Mp3FrameHeader | null> {
  return streamFrame(await window.bytes(offset, HEADER_BYTES), offset, end, shape);
}

async function startsWith(window: FileWindow, offset: number, magic: string): Promise<boolean> {
  return (await window.bytes(offset, magic.length)).toString('latin1') === magic;
}

/** Size of an ID3v2 tag at `offset` (header, body, footer), or 0. */
async function id3v2TagBytes(window: FileWindow, offset: number): Promise<number> {
  const header = await window.bytes(offset, ID3V2_HEADER_BYTES);
  if (header.length < ID3V2_HEADER_BYTES || header.toString('latin1', 0, 3) !== 'ID3') return 0;
  const sizeBytes = header.subarray(6, 10);
  if (header.readUInt8(3) === 0xff || sizeBytes.some((byte) => byte >= 0x80)) return 0;
  const bodyBytes = sizeBytes.reduce((size, byte) => size * 128 + byte, 0);
  const footerBytes = (header.readUInt8(5) & 0x10) !== 0 ? ID3V2_HEADER_BYTES : 0;
  return ID3V2_HEADER_BYTES + bodyBytes + footerBytes;
}

/** Total size and count of the ID3v2 tags at `offset`; some taggers write more than one. */
async function id3v2Tags(window: FileWindow, offset: number): Promise<{ bytes: number; count: number }> {
  let total = 0;
  let count = 0;
  for (let tag = await id3v2TagBytes(window, offset); tag > 0; tag = await id3v2TagBytes(window, offset + total)) {
    total += tag;
    count += 1;
  }
  return { bytes: total, count };
}

async function id3v2TagsBytes(window: FileWindow, offset: number): Promise<number> {
  return (await id3v2Tags(window, offset)).bytes;
}

/** Whether `count` frames of one shape chain from `offset` (the shape is taken from the first). */
async function chainsFrom(window: FileWindow, offset: number, count: number): Promise<StreamShape | null> {
  const first = await headerAt(window, offset);
  if (first === null) return null;
  const shape = shapeOf(first);
  let position = offset;
  for (let index = 0; index < count; index += 1) {
    const header = await frameAt(window, position, window.size, shape);
    if (header === null) return null;
    position += header.frameBytes;
  }
  return shape;
}

/** Offsets in [from, to) where a frame sync (11 set bits) starts. */
async function* syncCandidates(window: FileWindow, from: number, to: number): AsyncGenerator<number> {
  let position = from;
  while (position < to) {
    const bytes = await window.bytes(position, Math.min(WINDOW_BYTES, to - position) + 1);
    if (bytes.length < 2) return;
    let index = bytes.indexOf(0xff);
    while (index !== -1 && index < bytes.length - 1) {
      if ((bytes.readUInt8(index + 1) & 0xe0) === 0xe0) yield position + index;
      index = bytes.indexOf(0xff, index + 1);
    }
    position += bytes.length - 1;
  }
}

async function findStreamStart(
  window: FileWindow,
  from: number,
): Promise<{ offset: number; shape: StreamShape } | null> {
  const to = Math.min(window.size, from + MAX_LEADING_JUNK);
  for await (const offset of syncCandidates(window, from, to)) {
    const shape = await chainsFrom(window, offset, MIN_CHAINED_FRAMES);
    if (shape !== null) return { offset, shape };
  }
  return null;
}

/** Tags and markers that legitimately end the audio of a stream. */
async function isStreamEnd(window: FileWindow, offset: number, end: number): Promise<boolean> {
  if (offset >= end) return true;
  for (const magic of ['TAG', 'APETAGEX', 'ID3', 'LYRICSBEGIN']) {
    if (await startsWith(window, offset, magic)) return true;
  }
  return false;
}

/**
 * After junk, the next offset in [from, from + MAX_RESYNC) where a frame of
 * the stream starts and is followed by another frame or the end of the
 * stream: one lone sync word in junk is not enough.
 */
async function resync(window: FileWindow, from: number, end: number, shape: StreamShape): Promise<number | null> {
  for await (const offset of syncCandidates(window, from, Math.min(end, from + MAX_RESYNC))) {
    const header = await frameAt(window, offset, end, shape);
    if (header === null) continue;
    const next = offset + header.frameBytes;
    if ((await frameAt(window, next, end, shape)) !== null || (await isStreamEnd(window, next, end))) return offset;
  }
  return null;
}

interface ScannedFrame {
  offset: number;
  header: Mp3FrameHeader;
}

/**
 * Every complete frame of the stream in [start, end), skipping junk and
 * embedded ID3v2 tags. Frames come in batches, one per read from disk, so a
 * multi-GB file does not cost an await per frame.
 */
async function* scanFrames(
  window: FileWindow,
  start: number,
  end: number,
  shape: StreamShape,
): AsyncGenerator<ScannedFrame[]> {
  let batch: ScannedFrame[] = [];
  let offset = start;
  while (offset + HEADER_BYTES <= end) {
    const cached = window.cached(offset, HEADER_BYTES);
    if (cached === undefined && batch.length > 0) {
      yield batch;
      batch = [];
    }
    const header =
      cached === undefined ? await frameAt(window, offset, end, shape) : streamFrame(cached, offset, end, shape);
    if (header !== null) {
      batch.push({ offset, header });
      offset += header.frameBytes;
      continue;
    }
    // Concatenated files carry their own ID3v2 tags, which can be large (cover art).
    const tagBytes = await id3v2TagsBytes(window, offset);
    const next = tagBytes > 0 ? offset + tagBytes : await resync(window, offset + 1, end, shape);
    if (next === null) break;
    offset = next;
  }
  if (batch.length > 0) yield batch;
}

/** RIFF files can carry MPEG frames (format tag 0x55); they are WAVs, not MP3 files. */
async function isRiffContainer(window: FileWindow): Promise<boolean> {
  for (const magic of ['RIFF', 'RF64', 'BW64']) {
    if (await startsWith(window, 0, magic)) return true;
  }
  return false;
}

/**
 * Scans the whole file frame by frame. Null when the file is not MPEG
 * audio: at least three chained frames of one version/layer/rate/channel
 * count must start within 64 KiB after the ID3v2 tag. The layer is reported
 * (callers refuse layers I and II); junk between frames is skipped when a
 * chained frame follows within 64 KiB. I/O errors propagate.
 */
export async function readMp3Info(path: string): Promise<Mp3Info | null> {
  const handle = await open(path, 'r');
  try {
    const window = new FileWindow(handle, (await handle.stat()).size);
    return await scanMp3(window);
  } finally {
    await handle.close();
  }
}

async function scanMp3(window: FileWindow): Promise<Mp3Info | null> {
  if (await isRiffContainer(window)) return null;
  const { bytes: id3v2Bytes, count: id3v2TagCount } = await id3v2Tags(window, 0);
  const start = await findStreamStart(window, id3v2Bytes);
  if (start === null) return null;
  const first = await headerAt(window, start.offset);
  if (first === null) return null;
  const infoFrame = parseInfoFrame(await window.bytes(start.offset, first.frameBytes), first);
  const firstFrameOffset = infoFrame === null ? start.offset : start.offset + first.frameBytes;

  let frames = 0;
  let audioBytes = 0;
  let audioEnd = firstFrameOffset;
  for await (const batch of scanFrames(window, firstFrameOffset, window.size, start.shape)) {
    for (const { offset, header } of batch) {
      frames += 1;
      audioBytes += header.frameBytes;
      audioEnd = offset + header.frameBytes;
    }
  }
  const tags = { id3v2Bytes, id3v2Tags: id3v2TagCount };
  return summarise({ ...tags, firstFrameOffset, audioEnd, frames, audioBytes, first, infoFrame });
}

function summarise(scan: {
  id3v2Bytes: number;
  id3v2Tags: number;
  firstFrameOffset: number;
  audioEnd: number;
  frames: number;
  audioBytes: number;
  first: Mp3FrameHeader;
  infoFrame: InfoFrame | null;
}): Mp3Info {
  const { first, frames, infoFrame } = scan;
  const encoderDelay = infoFrame?.encoderDelay ?? 0;
  const encoderPadding = infoFrame?.encoderPadding ?? 0;
  const codedSamples = frames * first.samplesPerFrame;
  const totalSamples = Math.max(0, codedSamples - encoderDelay - encoderPadding);
  const codedSeconds = codedSamples / first.sampleRate;
  return {
    id3v2Bytes: scan.id3v2Bytes,
    id3v2Tags: scan.id3v2Tags,
    firstFrameOffset: scan.firstFrameOffset,
    audioEnd: scan.audioEnd,
    frames,
    sampleRate: first.sampleRate,
    channels: first.channels,
    samplesPerFrame: first.samplesPerFrame,
    version: first.version,
    layer: first.layer,
    hasInfoTag: infoFrame !== null,
    declaredFrames: infoFrame?.declaredFrames,
    encoderDelay,
    encoderPadding,
    totalSamples,
    durationSeconds: totalSamples / first.sampleRate,
    averageBitrateKbps: codedSeconds > 0 ? (scan.audioBytes * 8) / codedSeconds / 1000 : 0,
  };
}

/** Every audio frame (not the Info frame) of a file read by readMp3Info, in order. */
export async function* mp3FrameOffsets(path: string, info: Mp3Info): AsyncGenerator<{ offset: number; bytes: number }> {
  const handle = await open(path, 'r');
  try {
    const window = new FileWindow(handle, (await handle.stat()).size);
    const shape: StreamShape = {
      version: info.version,
      layer: info.layer,
      sampleRate: info.sampleRate,
      channels: info.channels,
    };
    for await (const batch of scanFrames(window, info.firstFrameOffset, info.audioEnd, shape)) {
      for (const { offset, header } of batch) yield { offset, bytes: header.frameBytes };
    }
  } finally {
    await handle.close();
  }
}

/** Copies the MP3 from its first frame (Xing/Info frame included) to the end: the leading ID3v2 tags are dropped. */
export async function writeWithoutLeadingTags(src: string, info: Mp3Info, dest: string): Promise<void> {
  if (info.id3v2Bytes >= info.audioEnd) throw new RangeError('no audio after the ID3v2 tags');
  await pipeline(createReadStream(src, { start: info.id3v2Bytes }), createWriteStream(dest));
}
