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
