/**
 * MPEG audio frames as bytes: the 4-byte frame header, the shape a stream
 * keeps from frame to frame, and the Xing/Info (LAME) or VBRI tag frame that
 * holds the encoder delay and padding. Pure Buffer parsing; scanning a file
 * is mp3.ts's.
 */
export type MpegVersion = 1 | 2 | 2.5;
export type MpegLayer = 1 | 2 | 3;

export interface Mp3FrameHeader {
  version: MpegVersion;
  layer: MpegLayer;
  bitrateKbps: number;
  sampleRate: number;
  channels: 1 | 2;
  padding: boolean;
  frameBytes: number;
  samplesPerFrame: number;
}

export const HEADER_BYTES = 4;

// Indexed by the header's 2-bit fields; null marks reserved values.
const VERSIONS: readonly (MpegVersion | null)[] = [2.5, null, 2, 1];
const LAYERS: readonly (MpegLayer | null)[] = [null, 3, 2, 1];
const SAMPLE_RATES: Readonly<Record<MpegVersion, readonly number[]>> = {
  1: [44100, 48000, 32000],
  2: [22050, 24000, 16000],
  2.5: [11025, 12000, 8000],
};
// kbps by bitrate index 1..14 (0 is free format, 15 is invalid).
const BITRATES_V1: Readonly<Record<MpegLayer, readonly number[]>> = {
  1: [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  2: [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  3: [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
};
const BITRATES_V2: Readonly<Record<MpegLayer, readonly number[]>> = {
  1: [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  2: [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  3: [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};

/**
 * Parses the 4-byte frame header at `offset`. Null for a bad sync, reserved
 * version/layer/bitrate/sample rate/emphasis, free format, or too few bytes.
 */
export function parseMp3FrameHeader(buf: Buffer, offset: number): Mp3FrameHeader | null {
  if (offset < 0 || offset + HEADER_BYTES > buf.length) return null;
  const b1 = buf.readUInt8(offset + 1);
  const b2 = buf.readUInt8(offset + 2);
  const b3 = buf.readUInt8(offset + 3);
  if (buf.readUInt8(offset) !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const version = VERSIONS[(b1 >> 3) & 0x03] ?? null;
  const layer = LAYERS[(b1 >> 1) & 0x03] ?? null;
  if (version === null || layer === null) return null;
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 0x03;
  // Emphasis 2 is reserved; rejecting it weeds out more false syncs.
  if (bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3 || (b3 & 0x03) === 2) return null;
  const table = version === 1 ? BITRATES_V1 : BITRATES_V2;
  const bitrateKbps = table[layer][bitrateIndex - 1];
  const sampleRate = SAMPLE_RATES[version][rateIndex];
  if (bitrateKbps === undefined || sampleRate === undefined) return null;
  const padding = (b2 & 0x02) !== 0;
  return {
    version,
    layer,
    bitrateKbps,
    sampleRate,
    channels: b3 >> 6 === 3 ? 1 : 2,
    padding,
    frameBytes: frameBytesOf(version, layer, bitrateKbps, sampleRate, padding),
    samplesPerFrame: samplesPerFrameOf(version, layer),
  };
}

function samplesPerFrameOf(version: MpegVersion, layer: MpegLayer): number {
  if (layer === 1) return 384;
  if (layer === 2) return 1152;
  return version === 1 ? 1152 : 576;
}

function frameBytesOf(
  version: MpegVersion,
  layer: MpegLayer,
  bitrateKbps: number,
  sampleRate: number,
  padding: boolean,
): number {
  // Layer I counts in 4-byte slots; MPEG-2/2.5 layer III frames hold half the samples.
  if (layer === 1) return (Math.floor((12_000 * bitrateKbps) / sampleRate) + (padding ? 1 : 0)) * 4;
  const coefficient = layer === 3 && version !== 1 ? 72_000 : 144_000;
  return Math.floor((coefficient * bitrateKbps) / sampleRate) + (padding ? 1 : 0);
}

/** What stays constant across the frames of one stream. */
export interface StreamShape {
  version: MpegVersion;
  layer: MpegLayer;
  sampleRate: number;
  channels: 1 | 2;
}

export function shapeOf(header: Mp3FrameHeader): StreamShape {
  return { version: header.version, layer: header.layer, sampleRate: header.sampleRate, channels: header.channels };
}

export function matchesShape(header: Mp3FrameHeader, shape: StreamShape): boolean {
  return (
    header.version === shape.version &&
    header.layer === shape.layer &&
    header.sampleRate === shape.sampleRate &&
    header.channels === shape.channels
  );
}

export interface InfoFrame {
  encoderDelay: number;
  encoderPadding: number;
  /** The stream's audio frames as the tag declares them (Xing with its frames flag, VBRI); none when not given. */
  declaredFrames?: number | undefined;
}

/** Side information size of a layer III frame: where the Xing/Info tag starts after the header. */
function sideInfoBytes(header: Mp3FrameHeader): number {
  if (header.version === 1) return header.channels === 1 ? 17 : 32;
  return header.channels === 1 ? 9 : 17;
}

const VBRI_OFFSET = HEADER_BYTES + 32;
const XING_FLAG_FRAMES = 0x1;
const XING_FLAG_BYTES = 0x2;
const XING_FLAG_TOC = 0x4;
const XING_FLAG_QUALITY = 0x8;
const LAME_DELAY_OFFSET = 0x15;
const LAME_ENCODER_BYTES = 4;

/**
 * Recognises a Xing/Info or VBRI frame (a silent frame holding stream
 * metadata, not audio) and reads the LAME extension's encoder delay and
 * padding when there is one.
 */
export function parseInfoFrame(frame: Buffer, header: Mp3FrameHeader): InfoFrame | null {
  if (header.layer !== 3) return null;
  const hasCrc = (frame.readUInt8(1) & 0x01) === 0;
  const xingOffset = HEADER_BYTES + (hasCrc ? 2 : 0) + sideInfoBytes(header);
  const xingMagic = frame.toString('latin1', xingOffset, xingOffset + 4);
  if (xingMagic === 'Xing' || xingMagic === 'Info') return parseXing(frame, xingOffset);
  if (frame.toString('latin1', VBRI_OFFSET, VBRI_OFFSET + 4) === 'VBRI') {
    // 'VBRI', version (2), delay (2), quality (2), bytes (4), frames (4).
    const framesAt = VBRI_OFFSET + 14;
    const declaredFrames = framesAt + 4 <= frame.length ? frame.readUInt32BE(framesAt) : undefined;
    return { encoderDelay: 0, encoderPadding: 0, declaredFrames };
  }
  return null;
}

function parseXing(frame: Buffer, xingOffset: number): InfoFrame {
  if (xingOffset + 8 > frame.length) return { encoderDelay: 0, encoderPadding: 0 };
  const flags = frame.readUInt32BE(xingOffset + 4);
  const declaredFrames =
    flags & XING_FLAG_FRAMES && xingOffset + 12 <= frame.length ? frame.readUInt32BE(xingOffset + 8) : undefined;
  const none: InfoFrame = { encoderDelay: 0, encoderPadding: 0, declaredFrames };
  let lame = xingOffset + 8;
  if (flags & XING_FLAG_FRAMES) lame += 4;
  if (flags & XING_FLAG_BYTES) lame += 4;
  if (flags & XING_FLAG_TOC) lame += 100;
  if (flags & XING_FLAG_QUALITY) lame += 4;
  if (lame + LAME_DELAY_OFFSET + 3 > frame.length || !hasEncoderName(frame, lame)) return none;
  // 12 bits of delay then 12 bits of padding.
  const packed = frame.readUIntBE(lame + LAME_DELAY_OFFSET, 3);
  return { encoderDelay: packed >> 12, encoderPadding: packed & 0xfff, declaredFrames };
}

/**
 * The LAME extension starts with an encoder name ("LAME3.100", "Lavc59.37",
 * "GOGO"...). A plain Xing tag has zeros or audio there, so the delay bytes
 * are only trusted after a printable name.
 */
function hasEncoderName(frame: Buffer, offset: number): boolean {
  for (let index = offset; index < offset + LAME_ENCODER_BYTES; index += 1) {
    const byte = frame.readUInt8(index);
    if (byte < 0x20 || byte > 0x7e) return false;
  }
  return true;
}
