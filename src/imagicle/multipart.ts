/**
 * The upload body in Imagicle's wire format (imagicle-api.md): a `jsondata`
 * part, then an `attachment` part whose Content-Disposition carries both
 * `filename` and `filename*` as .NET's HttpClient writes them. The audio is
 * streamed from disk; the length is known up front so no chunked encoding.
 */
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

export interface MultipartInput {
  metadataJson: string;
  audioPath: string;
  audioBytes: number;
  contentType: string;
  filename: string;
}

export interface MultipartBody {
  boundary: string;
  contentType: string;
  contentLength: number;
  /** A fresh stream each call, so a retry can rebuild the body from disk. */
  stream(): Readable;
}

const SAFE_ASCII = /[^A-Za-z0-9._-]/g;

/**
 * Makes a client filename safe to forward: no path, no control characters,
 * no quotes; the extension is replaced by the one of the audio we send.
 */
export function sanitiseFilename(original: string | undefined, extension: string): string {
  const base = (original ?? '')
    .split(/[\\/]/)
    .pop()!
    // Control characters (CR/LF included), quotes and separators a header parser could trip on.
    .replace(/[\p{Cc}\p{Cf}"';\\]/gu, '')
    .normalize('NFC')
    .trim();
  // Shortened by code points, not UTF-16 units: cutting an emoji in half left a lone surrogate, which
  // encodeURIComponent (filename*) refuses with a URIError. Lone surrogates from anywhere become U+FFFD.
  const stem = Array.from(toWellFormed(base.replace(/\.[^.]*$/, '').replace(/^\.+/, '')))
    .slice(0, 120)
    .join('')
    .trim();
  return `${stem || 'recording'}.${extension}`;
}

/** String.prototype.toWellFormed (Node 20+), written out: lone surrogates become U+FFFD. */
function toWellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** ASCII fallback for the plain `filename` parameter (unquoted token, like Imagicle's example). */
export function asciiFilename(filename: string): string {
  const ascii = filename
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(SAFE_ASCII, '_');
  return ascii.replace(/^_+(?=\.)/, 'recording');
}

/** RFC 5987 value for `filename*`: utf-8'' then percent-encoded UTF-8. */
export function extendedFilename(filename: string): string {
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `utf-8''${encoded}`;
}

function newBoundary(): string {
  return `----ImagicleGateway${randomBytes(12).toString('hex')}`;
}

export function buildMultipart(input: MultipartInput, boundary = newBoundary()): MultipartBody {
  const head = Buffer.from(
    `--${boundary}\r\n` +
      'Content-Type: application/json\r\n' +
      'Content-Disposition: form-data; name=jsondata\r\n' +
      '\r\n' +
      `${input.metadataJson}\r\n` +
      `--${boundary}\r\n` +
      `Content-Type: ${input.contentType}\r\n` +
      `Content-Disposition: form-data; name=attachment; filename=${asciiFilename(input.filename)}; filename*=${extendedFilename(input.filename)}\r\n` +
      '\r\n',
    'utf8',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'ascii');
  return {
    boundary,
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength: head.length + input.audioBytes + tail.length,
    stream: () =>
      Readable.from(
        (async function* body() {
          yield head;
          let sent = 0;
          // A 256 KiB read buffer keeps syscalls few without holding the file in memory.
          for await (const chunk of createReadStream(input.audioPath, { highWaterMark: 256 * 1024 })) {
            sent += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (sent !== input.audioBytes)
            throw new Error(`audio file changed while sending (${sent} of ${input.audioBytes} bytes)`);
          yield tail;
        })(),
        { objectMode: false },
      ),
  };
}
