/**
 * The facts of a plain Ogg Opus file (RFC 7845) read without ffprobe: its
 * channels and the duration ffprobe would report. Only the simplest layout is
 * recognised (one logical stream, channel mapping family 0, an end-of-stream
 * page at the very end); anything else returns null and ffprobe decides.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { completedPackets, lastPageIn, OGG_MAX_PAGE_BYTES, parseOggPage, type OggPage } from './ogg.js';

/** Opus timestamps always count 48 kHz samples, whatever the input rate was. */
export const OPUS_RATE = 48_000;
const OPUS_HEAD_BYTES = 19;
/** Enough for the identification page, the comment page(s) of an ordinary file and the first audio page. */
const HEAD_READ_BYTES = 64 * 1024;

export interface OggOpusInfo {
  channels: 1 | 2;
  preSkip: number;
  /** The granule position of the last page. */
  lastGranule: number;
  /**
   * What ffprobe reports as the format's and the stream's duration, in 48 kHz
   * samples: the last granule position, pre-skip included (ffmpeg's
   * ogg_get_length does not subtract it, nor the start, which is 0 here).
   */
  durationSamples: number;
  fileSize: number;
}

export async function readOggOpusInfo(path: string): Promise<OggOpusInfo | null> {
  const handle = await open(path, 'r');
  try {
    return await readFrom(handle);
  } finally {
    await handle.close();
  }
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

async function readFrom(handle: FileHandle): Promise<OggOpusInfo | null> {
  const fileSize = (await handle.stat()).size;
  const head = await readAt(handle, 0, Math.min(fileSize, HEAD_READ_BYTES));
  const first = parseOggPage(head, 0);
  const idHeader = first && identification(first, head);
  if (!first || !idHeader) return null;
  const start = startOfAudio(head, first);
  // A stream that does not start at 0 (cut from a longer one, or offset) is left to ffprobe: its start and
  // duration are rounded to microseconds separately there.
  if (start === null || start.samples !== 0) return null;

  const tailOffset = Math.max(0, fileSize - OGG_MAX_PAGE_BYTES);
  const last = lastPageIn(await readAt(handle, tailOffset, fileSize - tailOffset), tailOffset);
  // The last page ends the one stream and says where it ends: else (a truncated or chained file) ffprobe decides.
  if (!last || last.serial !== first.serial || !last.eos || last.bos || last.granule === undefined) return null;
  if (last.granule <= 0 || last.sequence < start.sequence) return null;
  // An end-of-stream page before the last one: a chain reusing the serial number.
  if (start.eos && last.sequence !== start.sequence) return null;
  return {
    channels: idHeader.channels,
    preSkip: idHeader.preSkip,
    lastGranule: last.granule,
    durationSamples: last.granule,
    fileSize,
  };
}

/** The OpusHead packet alone on a valid BOS page: version 0.x, mapping family 0, one or two channels. */
function identification(page: OggPage, head: Buffer): { channels: 1 | 2; preSkip: number } | null {
  if (!page.bos || page.continued || !page.crcValid || page.sequence !== 0) return null;
  const { packets } = completedPackets(page);
  if (packets.length !== 1 || page.granule !== 0) return null;
  const [from, to] = packets[0]!;
  const packet = head.subarray(from, to);
  if (packet.length !== OPUS_HEAD_BYTES || packet.toString('latin1', 0, 8) !== 'OpusHead') return null;
  const version = packet[8]!;
  const channels = packet[9]!;
  const mappingFamily = packet[18]!;
  if ((version & 0xf0) !== 0 || mappingFamily !== 0 || (channels !== 1 && channels !== 2)) return null;
  return { channels, preSkip: packet.readUInt16LE(10) };
}

/**
 * Walks the header pages after the BOS page (OpusTags, on one page or more,
 * same serial, no other stream's BOS page) to the page where the first audio
 * packet ends, and computes ffmpeg's start from it (oggparseopus.c,
 * opus_packet): that page's granule less the duration of every packet that
 * ends on it.
 */
function startOfAudio(head: Buffer, first: OggPage): { samples: number; sequence: number; eos: boolean } | null {
  let offset = first.headerBytes + first.bodyBytes;
  let expectedSequence = 1;
  let sawTags = false;
  let tagsOpen = false;
  while (offset < head.length) {
    const page = parseOggPage(head, offset);
    if (!page || !page.crcValid || page.bos || page.serial !== first.serial) return null;
    if (page.sequence !== expectedSequence) return null;
    expectedSequence += 1;
    offset += page.headerBytes + page.bodyBytes;
    const { packets } = completedPackets(page);
    if (!sawTags) {
      if (
        page.continued ||
        head.toString('latin1', page.offset + page.headerBytes, page.offset + page.headerBytes + 8) !== 'OpusTags'
      ) {
        return null;
      }
      sawTags = true;
    } else if (page.continued !== tagsOpen) {
      return null;
    }
    if (tagsOpen || page.sequence === 1) {
      if (page.eos) return null;
      // A comment page: it must complete OpusTags (and nothing after it), or carry it on to the next page.
      if (packets.length > 1) return null;
      tagsOpen = packets.length === 0;
      if (!tagsOpen && page.granule !== 0) return null;
      continue;
    }
    // The first audio page: it starts a packet (RFC 7845 §3) and at least one packet ends on it.
    if (page.continued || packets.length === 0 || page.granule === undefined) return null;
    // ffmpeg does not compute a start from an end-of-stream page: it starts at 0.
    if (page.eos) return { samples: 0, sequence: page.sequence, eos: true };
    let duration = 0;
    for (const [from, to] of packets) {
      const samples = packetSamples(head.subarray(from, to));
      if (samples === null) return null;
      duration += samples;
    }
    return { samples: page.granule - duration, sequence: page.sequence, eos: false };
  }
  return null;
}

/** A packet's samples at 48 kHz from its TOC byte (RFC 6716 §3.1), as ffmpeg's opus_duration computes them. */
function packetSamples(packet: Buffer): number | null {
  if (packet.length === 0) return null;
  const toc = packet[0]!;
  const config = toc >> 3;
  const frameSize =
    config < 12 ? Math.max(480, 960 * (config & 3)) : config < 16 ? 480 << (config & 1) : 120 << (config & 3);
  const code = toc & 3;
  if (code === 3 && packet.length < 2) return null;
  const frames = code === 0 ? 1 : code === 3 ? packet[1]! & 0x3f : 2;
  return frames === 0 ? null : frameSize * frames;
}
