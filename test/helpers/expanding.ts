/** Small files that expand enormously when converted (the disk-bound tests), built in memory. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

function wavHeader(formatTag: number, channels: number, rate: number, bits: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  const block = (channels * bits) / 8;
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(formatTag, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * block, 28);
  h.writeUInt16LE(block, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** A float WAV at 1 Hz: 43,000 samples (172 KB) declare 11 h 56 min; at 8 kHz 16-bit that is 688 MB. */
export function oneHertzFloatWav(samples = 43_000): Buffer {
  const data = Buffer.alloc(samples * 4);
  for (let i = 0; i < samples; i++) data.writeFloatLE(0.25 * Math.sin(i / 3), i * 4);
  return Buffer.concat([wavHeader(3, 1, 1, 32, data.length), data]);
}

/** A 16-bit 8 kHz mono WAV of `bytes` bytes of audio (64 KB: 4 s), a tone. */
export function pcmLeg(bytes = 64_000, hz = 440): Buffer {
  const samples = Math.floor(bytes / 2);
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 8000)), i * 2);
  }
  return Buffer.concat([wavHeader(1, 1, 8000, 16, data.length), data]);
}

/** Bytes of every file under a folder (missing: 0). */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory()
      ? await folderBytes(full)
      : await stat(full).then(
          (s) => s.size,
          () => 0,
        );
  }
  return total;
}

/** Polls a folder's size until stopped; the largest seen. */
export function watchFolderBytes(dir: string, intervalMs = 20): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await folderBytes(dir));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return Math.max(peak, await folderBytes(dir));
    },
  };
}
