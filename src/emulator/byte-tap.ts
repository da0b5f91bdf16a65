/**
 * A pass-through stream that reports the running count of bytes through it.
 */
import { Transform } from 'node:stream';

export function createByteTap(onBytes: (total: number) => void): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      total += chunk.length;
      callback(null, chunk);
      onBytes(total);
    },
  });
}
