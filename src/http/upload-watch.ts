/**
 * Cuts off slow or stalled uploads: no byte for `idleTimeoutMs`, or, once
 * the first `graceMs` (by default `idleTimeoutMs`) have passed, an average
 * rate under `minBytesPerSecond`
 * (a slow drip that keeps a connection and a temp file busy for hours).
 *
 * It watches the socket's byte counter rather than the request stream, so it
 * never competes with the multipart parser for data or changes its flow.
 * Only the body's arrival is watched: once the upload is in, the gateway may
 * work for as long as the job needs without a socket timeout.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';

export interface UploadWatchLimits {
  idleTimeoutMs: number;
  /** 0 disables the rate check. */
  minBytesPerSecond: number;
  /** Time before the rate check starts (slow start, a client's own pauses); defaults to idleTimeoutMs. */
  graceMs?: number;
}

const uploadTimeout = (message: string): GatewayError => new GatewayError('UPLOAD_TIMEOUT', message);

/** Starts watching; calls onStall once with a 408 error. Returns the function that stops watching. */
export function watchUpload(
  req: IncomingMessage,
  limits: UploadWatchLimits,
  onStall: (error: GatewayError) => void,
): () => void {
  const socket = req.socket;
  const started = performance.now();
  const base = socket.bytesRead;
  let lastBytes = base;
  let lastProgress = started;
  const grace = limits.graceMs ?? limits.idleTimeoutMs;
  const tick = Math.max(50, Math.min(1000, Math.floor(limits.idleTimeoutMs / 4)));
  const timer = setInterval(() => {
    const now = performance.now();
    const bytes = socket.bytesRead;
    if (bytes !== lastBytes) {
      lastBytes = bytes;
      lastProgress = now;
    }
    if (now - lastProgress >= limits.idleTimeoutMs) {
      stop();
      onStall(uploadTimeout(`The upload stalled: no data for ${Math.round(limits.idleTimeoutMs / 1000)} s`));
      return;
    }
    const elapsed = now - started;
    if (limits.minBytesPerSecond > 0 && elapsed >= grace) {
      const rate = ((bytes - base) * 1000) / elapsed;
      if (rate < limits.minBytesPerSecond) {
        stop();
        onStall(
          uploadTimeout(
            `The upload is too slow: ${Math.round(rate)} bytes/s on average, the minimum is ${limits.minBytesPerSecond} bytes/s`,
          ),
        );
      }
    }
  }, tick);
  timer.unref();
  const stop = (): void => clearInterval(timer);
  return stop;
}
