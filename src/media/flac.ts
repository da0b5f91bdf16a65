/**
 * FLAC's STREAMINFO block: the sample rate and the total samples the encoder wrote (0: unknown, a stream). The
 * first metadata block after "fLaC" is always STREAMINFO (34 bytes); an ID3v2 tag before it is skipped.
 */
import { open } from 'node:fs/promises';

export interface FlacStreamInfo {
  sampleRate: number;
  /** Samples per channel; 0 when the encoder did not know (a live stream). */
  totalSamples: number;
}

export async function readFlacStreamInfo(file: string): Promise<FlacStreamInfo | null> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(10);
    await handle.read(head, 0, 10, 0);
    let start = 0;
    if (head.toString('latin1', 0, 3) === 'ID3') {
      // Syncsafe size: 4 × 7 bits.
      start = 10 + ((head[6]! << 21) | (head[7]! << 14) | (head[8]! << 7) | head[9]!);
    }
    const block = Buffer.alloc(4 + 4 + 34);
    const { bytesRead } = await handle.read(block, 0, block.length, start);
    if (bytesRead < block.length || block.toString('latin1', 0, 4) !== 'fLaC' || (block[4]! & 0x7f) !== 0) return null;
    const info = block.subarray(8);
    // Bytes 10..17: sample rate (20 bits), channels − 1 (3), bits per sample − 1 (5), total samples (36).
    const sampleRate = (info[10]! << 12) | (info[11]! << 4) | (info[12]! >> 4);
    const totalSamples = (info[13]! & 0x0f) * 2 ** 32 + info.readUInt32BE(14);
    return sampleRate > 0 ? { sampleRate, totalSamples } : null;
  } finally {
    await handle.close();
  }
}
