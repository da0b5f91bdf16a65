/**
 * Audio parts are binary, whatever their headers say. busboy reads a part
 * without a `filename` in its Content-Disposition as a text field: it decodes
 * the bytes as UTF-8, which destroys audio (a 60,000-byte WAV became 31,436
 * bytes), and holds it in memory. This transform sits before busboy and marks
 * such parts as files: their part headers get `Content-Type:
 * application/octet-stream`, which busboy always streams as a file. Bodies
 * pass through untouched; only part headers (bounded) are buffered.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** A part header block larger than this is left alone (busboy refuses it anyway). */
const MAX_HEADER_BLOCK_BYTES = 64 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');

/** The boundary of a multipart/form-data Content-Type, or undefined. */
export function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** Whether a part's header block (CRLF-separated lines) names one of `fileFields` and gives no filename. */
function needsFileMark(lines: string[], fileFields: readonly string[]): boolean {
  const disposition = lines.find((line) => /^content-disposition\s*:/i.test(line));
  if (disposition === undefined) return false;
  const name = /;\s*name\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(disposition);
  const partName = name?.[1] ?? name?.[2];
  if (partName === undefined || !fileFields.includes(partName)) return false;
  const filename = /;\s*filename\*?\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(disposition);
  return (filename?.[1] ?? filename?.[2] ?? '') === '';
}

function markHeaders(block: Buffer, fileFields: readonly string[]): Buffer {
  const lines = block.toString('latin1').split('\r\n');
  if (!needsFileMark(lines, fileFields)) return block;
  const kept = lines.filter((line) => !/^content-type\s*:/i.test(line));
  kept.push('Content-Type: application/octet-stream');
  return Buffer.from(kept.join('\r\n'), 'latin1');
}

export function fileFieldMarker(boundary: string, fileFields: readonly string[]): Transform {
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  let pending: Buffer = Buffer.alloc(0);
  let inHeaders = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const out: Buffer[] = [];
      for (;;) {
        if (!inHeaders) {
          const at = pending.indexOf(delimiter);
          if (at < 0) {
            // Keep what could be the start of a delimiter split across chunks.
            const keep = Math.min(pending.length, delimiter.length - 1);
            out.push(pending.subarray(0, pending.length - keep));
            pending = pending.subarray(pending.length - keep);
            break;
          }
          out.push(pending.subarray(0, at + delimiter.length));
          pending = pending.subarray(at + delimiter.length);
          inHeaders = true;
        } else {
          const end = pending.indexOf(HEADER_END);
          if (end < 0) {
            if (pending.length > MAX_HEADER_BLOCK_BYTES) {
              out.push(pending);
              pending = Buffer.alloc(0);
              inHeaders = false;
            }
            break;
          }
          out.push(markHeaders(pending.subarray(0, end), fileFields));
          pending = pending.subarray(end);
          inHeaders = false;
        }
      }
      done(null, Buffer.concat(out));
    },
    flush(done: TransformCallback) {
      done(null, pending);
    },
  });
}
