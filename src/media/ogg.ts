/**
 * Ogg pages (RFC 3533): header parsing, the page CRC, and the packets a page
 * completes. Enough to read an Ogg Opus file's head and last page without
 * ffprobe (fast-probe.ts); nothing here decodes audio.
 */

const OGG_CAPTURE = 'OggS';
/** 27 fixed bytes, then one lacing value per segment. */
const OGG_FIXED_HEADER_BYTES = 27;
/** The largest page: a full segment table of 255 segments of 255 bytes. */
export const OGG_MAX_PAGE_BYTES = OGG_FIXED_HEADER_BYTES + 255 + 255 * 255;

const FLAG_CONTINUED = 0x01;
const FLAG_BOS = 0x02;
const FLAG_EOS = 0x04;

export interface OggPage {
  /** File offset (or buffer offset) of the capture pattern. */
  offset: number;
  continued: boolean;
  bos: boolean;
  eos: boolean;
  /** The granule position; -1 (no packet ends on this page) is `undefined`, and so is one above 2^53. */
  granule: number | undefined;
  serial: number;
  sequence: number;
  /** The lacing values. */
  segments: Uint8Array;
  headerBytes: number;
  bodyBytes: number;
  /** The stored CRC equals the one computed over the page. */
  crcValid: boolean;
}

/**
 * The page whose capture pattern starts at `offset` in `buffer`, or null when
 * there is none, its version is not 0, it is cut short by the buffer's end, or
 * its flags have unknown bits.
 */
export function parseOggPage(buffer: Buffer, offset: number): OggPage | null {
  if (offset < 0 || offset + OGG_FIXED_HEADER_BYTES > buffer.length) return null;
  if (buffer.toString('latin1', offset, offset + 4) !== OGG_CAPTURE || buffer[offset + 4] !== 0) return null;
  const flags = buffer[offset + 5]!;
  if ((flags & ~(FLAG_CONTINUED | FLAG_BOS | FLAG_EOS)) !== 0) return null;
  const segmentCount = buffer[offset + 26]!;
  const headerBytes = OGG_FIXED_HEADER_BYTES + segmentCount;
  if (offset + headerBytes > buffer.length) return null;
  const segments = buffer.subarray(offset + OGG_FIXED_HEADER_BYTES, offset + headerBytes);
  const bodyBytes = segments.reduce((sum, lacing) => sum + lacing, 0);
  if (offset + headerBytes + bodyBytes > buffer.length) return null;
  const rawGranule = buffer.readBigInt64LE(offset + 6);
  const granule = rawGranule < 0n || rawGranule > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(rawGranule);
  return {
    offset,
    continued: (flags & FLAG_CONTINUED) !== 0,
    bos: (flags & FLAG_BOS) !== 0,
    eos: (flags & FLAG_EOS) !== 0,
    granule,
    serial: buffer.readUInt32LE(offset + 14),
    sequence: buffer.readUInt32LE(offset + 18),
    segments,
    headerBytes,
    bodyBytes,
    crcValid: buffer.readUInt32LE(offset + 22) === pageCrc(buffer.subarray(offset, offset + headerBytes + bodyBytes)),
  };
}

/**
 * The packets that end on a page, as [start, end) offsets into the buffer the
 * page was parsed from; `continuesFromPrevious` tells whether the first one
 * began on an earlier page (then only its tail is here), and a packet still
 * open at the page's end (last lacing value 255) is not listed.
 */
export function completedPackets(page: OggPage): { packets: Array<[number, number]>; continuesFromPrevious: boolean } {
  const packets: Array<[number, number]> = [];
  let start = page.offset + page.headerBytes;
  let at = start;
  for (const lacing of page.segments) {
    at += lacing;
    if (lacing < 255) {
      packets.push([start, at]);
      start = at;
    }
  }
  return { packets, continuesFromPrevious: page.continued };
}

/**
 * The last complete page in `tail` (the end of a file, `tailOffset` being its
 * position in the file) that ends exactly at the end of `tail`: found by
 * searching backwards for the capture pattern and keeping the first candidate
 * whose header parses and whose CRC is right. `offset` is the file offset.
 */
export function lastPageIn(tail: Buffer, tailOffset: number): OggPage | null {
  const capture = Buffer.from(OGG_CAPTURE, 'latin1');
  let from = tail.length - OGG_FIXED_HEADER_BYTES;
  while (from >= 0) {
    const at = tail.lastIndexOf(capture, from);
    if (at < 0) return null;
    const page = parseOggPage(tail, at);
    if (page && page.crcValid && at + page.headerBytes + page.bodyBytes === tail.length) {
      return { ...page, offset: tailOffset + at };
    }
    from = at - 1;
  }
  return null;
}

/** CRC-32 of Ogg: polynomial 0x04C11DB7, not reflected, initial value 0, computed with the CRC field as zeros. */
function pageCrc(page: Buffer): number {
  let crc = 0;
  for (let i = 0; i < page.length; i += 1) {
    const byte = i >= 22 && i < 26 ? 0 : page[i]!;
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  }
  return crc;
}

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i += 1) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit += 1) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();
