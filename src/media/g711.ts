/**
 * ITU-T G.711 expansion to 16-bit linear (as in the reference g711.c): the
 * one decoder for A-law and u-law bytes, with their 256-entry tables.
 */

/** One A-law byte to a 16-bit linear sample. */
export function decodeAlaw(byte: number): number {
  const value = byte ^ 0x55;
  const exponent = (value >> 4) & 0x07;
  const mantissa = value & 0x0f;
  const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return (value & 0x80) !== 0 ? magnitude : -magnitude;
}

/** One u-law byte to a 16-bit linear sample. */
export function decodeMulaw(byte: number): number {
  const value = ~byte & 0xff;
  const exponent = (value >> 4) & 0x07;
  const mantissa = value & 0x0f;
  const magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
  return (value & 0x80) !== 0 ? -magnitude : magnitude;
}

/** A 16-bit linear sample to an A-law byte (the reference encoder: rounds towards the segment's step). */
export function encodeAlaw(sample: number): number {
  let pcm = Math.max(-32768, Math.min(32767, Math.round(sample))) >> 3;
  let mask: number;
  if (pcm >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    pcm = -pcm - 1;
  }
  const ends = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
  let segment = 0;
  while (segment < 8 && pcm > ends[segment]!) segment++;
  if (segment >= 8) return 0x7f ^ mask;
  const mantissa = segment < 2 ? (pcm >> 1) & 0x0f : (pcm >> segment) & 0x0f;
  return ((segment << 4) | mantissa) ^ mask;
}

/** A 16-bit linear sample to a u-law byte (the reference encoder, bias 0x84). */
export function encodeMulaw(sample: number): number {
  let pcm = Math.max(-32768, Math.min(32767, Math.round(sample))) >> 2;
  let mask: number;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  pcm = Math.min(pcm, 8159) + 0x21;
  const ends = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
  let segment = 0;
  while (segment < 8 && pcm > ends[segment]!) segment++;
  if (segment >= 8) return 0x7f ^ mask;
  return ((segment << 4) | ((pcm >> (segment + 1)) & 0x0f)) ^ mask;
}
