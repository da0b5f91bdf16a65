/**
 * Exact length of Speex in Ogg. The decoder's output starts with its
 * lookahead (80 samples narrowband, 223 wideband, 509 ultra-wideband: speech
 * arrives 10-16 ms late) and ends with the rest of the last frame. The last
 * page's granule position is the real sample count: the decoded samples
 * [lookahead, lookahead + granule) are the recording, as speexdec plays it
 * for wideband.
 *
 * Only the first page and the last 64 KiB are read.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { SampleTrim } from './plan.js';

export interface SpeexLength {
  sampleRate: number;
  /** 0 narrowband, 1 wideband, 2 ultra-wideband. */
  mode: number;
  lookahead: number;
  /** Granule position of the stream's last page: samples per channel. */
  granule: number;
}

const PAGE_HEADER_BYTES = 27;
const TAIL_BYTES = 64 * 1024;
const FIRST_PAGE_BYTES = 27 + 255 + 255 * 255;
/** Narrowband encoder lookahead; each band split doubles it and adds the QMF filter's 63 samples. */
const LOOKAHEAD_BY_MODE: readonly number[] = [80, 2 * 80 + 63, 2 * (2 * 80 + 63) + 63];

/** The first page's Speex header and the last page's granule, or null when the file is anything else. */
export async function readSpeexLength(filePath: string): Promise<SpeexLength | null> {
  const handle = await open(filePath, 'r');
  try {
    const size = (await handle.stat()).size;
    const head = await readAt(handle, 0, Math.min(size, FIRST_PAGE_BYTES));
    const first = parsePage(head, 0);
    if (first === null || (first.flags & 0x02) === 0) return null;
    const packet = head.subarray(first.bodyOffset, first.bodyOffset + 80);
    if (packet.length < 80 || packet.toString('latin1', 0, 8) !== 'Speex   ') return null;
    const sampleRate = packet.readInt32LE(36);
    const mode = packet.readInt32LE(40);
    const lookahead = LOOKAHEAD_BY_MODE[mode];
    if (lookahead === undefined || sampleRate <= 0) return null;
    const granule = await lastGranule(handle, size, first.serial);
    if (granule === null || granule <= 0) return null;
    return { sampleRate, mode, lookahead, granule };
  } finally {
    await handle.close();
  }
}

/** The decoded samples that are the recording. */
export function speexTrim(length: SpeexLength): SampleTrim {
  return { startSample: length.lookahead, endSample: length.lookahead + length.granule };
}

interface Page {
  flags: number;
  granule: number;
  serial: number;
  bodyOffset: number;
  end: number;
}

function parsePage(buffer: Buffer, at: number): Page | null {
  if (at + PAGE_HEADER_BYTES > buffer.length || buffer.toString('latin1', at, at + 4) !== 'OggS') return null;
  const segments = buffer.readUInt8(at + 26);
  const bodyOffset = at + PAGE_HEADER_BYTES + segments;
  if (bodyOffset > buffer.length) return null;
  let bodyBytes = 0;
  for (let i = 0; i < segments; i += 1) bodyBytes += buffer.readUInt8(at + PAGE_HEADER_BYTES + i);
  const granule = buffer.readBigInt64LE(at + 6);
  return {
    flags: buffer.readUInt8(at + 5),
    granule: granule > BigInt(Number.MAX_SAFE_INTEGER) || granule < 0n ? -1 : Number(granule),
    serial: buffer.readUInt32LE(at + 14),
    bodyOffset,
    end: bodyOffset + bodyBytes,
  };
}

/** Granule of the last complete page of `serial` in the file's tail. */
async function lastGranule(handle: FileHandle, size: number, serial: number): Promise<number | null> {
  const start = Math.max(0, size - TAIL_BYTES);
  const tail = await readAt(handle, start, size - start);
  for (let at = tail.lastIndexOf('OggS'); at >= 0; at = at === 0 ? -1 : tail.lastIndexOf('OggS', at - 1)) {
    const page = parsePage(tail, at);
    if (page !== null && page.end <= tail.length && page.serial === serial && page.granule >= 0) return page.granule;
  }
  return null;
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}
