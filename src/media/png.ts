/**
 * A minimal PNG encoder for 8-bit palette images (colour type 3): IHDR,
 * PLTE, tRNS, one IDAT, IEND. Enough for the console's waveform pictures
 * (a few flat colours on a transparent background) without a dependency:
 * zlib does the compression and the CRC32 (zlib.crc32, Node >= 20.15).
 */
import { crc32, deflateSync } from 'node:zlib';

/** One palette entry: 0xRRGGBB and its opacity (0 transparent .. 255 opaque). */
export interface PaletteColor {
  rgb: number;
  alpha: number;
}

export interface PaletteImage {
  width: number;
  height: number;
  /** At most 256 colours; a pixel is an index into it. */
  palette: readonly PaletteColor[];
  /** width × height indices, row by row from the top. */
  pixels: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOR_TYPE_PALETTE = 3;
/** Row filter 0 (None): flat bars compress well enough without the other filters. */
const FILTER_NONE = 0;

/** One chunk: length, type, data, CRC32 of type and data. */
function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Pure: the bytes of a PNG file holding `image`. */
export function encodePalettePng(image: PaletteImage): Buffer {
  const { width, height, palette, pixels } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`a PNG needs a positive integer size, not ${width}×${height}`);
  }
  if (palette.length < 1 || palette.length > 256) throw new RangeError('a PNG palette has 1 to 256 colours');
  if (pixels.length !== width * height) throw new RangeError('one palette index per pixel');
  for (let i = 0; i < pixels.length; i++) {
    if (pixels[i]! >= palette.length) throw new RangeError(`pixel ${i} uses colour ${pixels[i]} beyond the palette`);
  }

  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = COLOR_TYPE_PALETTE; // compression, filter and interlace methods stay 0
  const plte = Buffer.alloc(palette.length * 3);
  palette.forEach(({ rgb }, i) => plte.writeUIntBE(rgb & 0xffffff, i * 3, 3));
  const trns = Buffer.from(palette.map(({ alpha }) => Math.max(0, Math.min(255, Math.round(alpha)))));

  const rows = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) {
    rows[y * (width + 1)] = FILTER_NONE;
    rows.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', header),
    chunk('PLTE', plte),
    chunk('tRNS', trns),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
