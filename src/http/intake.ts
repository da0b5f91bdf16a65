/**
 * Multipart intake: streams the upload's audio parts to files in the job's
 * temp folder (never into memory), reads the small fields, and enforces
 * explicit limits. Metadata can be checked as soon as it arrives, so a bad
 * `jsondata` sent first stops the upload before any audio is stored.
 */
import type { IncomingMessage } from 'node:http';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { extensionOf } from '../media/formats.js';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Transform, type Readable } from 'node:stream';
import busboy from 'busboy';
import { createHash, type Hash } from 'node:crypto';
import { badRequest, GatewayError, isOutOfSpace, toGatewayError, tooLarge } from '../errors.js';
import { watchUpload } from './upload-watch.js';
import { boundaryOf, fileFieldMarker } from './file-parts.js';

export interface IntakeLimits {
  maxUploadBytes: number;
  /** Largest text field (jsondata, options). */
  maxFieldBytes: number;
  maxParts: number;
  maxHeaderPairs: number;
  maxFilenameLength: number;
  /** Slow or stalled body: see upload-watch.ts. Unset: no watch. */
  idleTimeoutMs?: number;
  minBytesPerSecond?: number;
}

export const DEFAULT_INTAKE_LIMITS: Omit<IntakeLimits, 'maxUploadBytes'> = {
  maxFieldBytes: 64 * 1024,
  maxParts: 8,
  maxHeaderPairs: 32,
  maxFilenameLength: 255,
};

interface ReceivedFile {
  field: string;
  path: string;
  bytes: number;
  originalName: string | undefined;
  /** Lower-case extension of the client's filename (a format hint only; never used in a path). */
  extension: string;
  declaredType: string;
  /** SHA-256 of the bytes, computed while they streamed in (duplicate detection needs it; no second read). */
  sha256?: string | undefined;
}

export interface ReceivedUpload {
  jsondata: string | undefined;
  fields: Record<string, string>;
  files: Record<string, ReceivedFile>;
  totalBytes: number;
}

export interface IntakeOptions {
  jobDir: string;
  limits: IntakeLimits;
  /** File parts accepted, e.g. ['attachment', 'remoteAttachment']. */
  fileFields: readonly string[];
  /** Text fields accepted besides jsondata. */
  textFields: readonly string[];
  /** Called when jsondata arrives; throwing stops the intake with that error. */
  onJsondata?: (text: string) => void;
  signal?: AbortSignal;
}

/** Room for the multipart framing and the text fields on top of the audio bytes. */
const MULTIPART_OVERHEAD_ALLOWANCE = 1024 * 1024;

/** Feeds every chunk to a hash on its way to disk. */
function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

/** Counts bytes through the pipe and fails as soon as the upload limit is passed. */
function byteLimiter(limit: number, counter: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      counter.bytes += chunk.length;
      if (counter.bytes > limit) {
        done(tooLarge(`The upload is larger than the limit of ${limit} bytes`));
        return;
      }
      done(null, chunk);
    },
  });
}

export async function receiveUpload(req: IncomingMessage, options: IntakeOptions): Promise<ReceivedUpload> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(contentType)) {
    throw badRequest('The body must be multipart/form-data with a jsondata part and an attachment part');
  }
  const { limits } = options;
  // A declared length far over the limit is refused before a byte is stored (the fields need some room).
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limits.maxUploadBytes + MULTIPART_OVERHEAD_ALLOWANCE) {
    throw tooLarge(`The upload (${declared} bytes) is larger than the limit of ${limits.maxUploadBytes} bytes`);
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: {
        fileSize: limits.maxUploadBytes + 1,
        fieldSize: limits.maxFieldBytes,
        parts: limits.maxParts,
        headerPairs: limits.maxHeaderPairs,
        fields: limits.maxParts,
        files: limits.maxParts,
      },
    });
  } catch (error) {
    throw badRequest(
      `Malformed multipart request: ${error instanceof Error ? error.message : 'unknown problem'}`,
      error,
    );
  }

  // Audio parts are streamed as files even when the client gave them no filename (see file-parts.ts).
  const boundary = boundaryOf(contentType);
  const marker = boundary === undefined ? new PassThrough() : fileFieldMarker(boundary, options.fileFields);
  const upload: ReceivedUpload = { jsondata: undefined, fields: {}, files: {}, totalBytes: 0 };
  const counter = { bytes: 0 };
  const seen = new Set<string>();
  const writes: Promise<void>[] = [];
  let failure: GatewayError | undefined;

  return new Promise<ReceivedUpload>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown): void => {
      // A full disk while storing the upload is the server's problem (507 + Retry-After), not a malformed request.
      if (!failure) {
        failure =
          error instanceof GatewayError
            ? error
            : isOutOfSpace(error)
              ? toGatewayError(error)
              : badRequest(`Malformed multipart request: ${describe(error)}`, error);
      }
      req.unpipe(marker);
      marker.unpipe(parser);
      // Ends a file part still being received (client gone, limit hit), so its write settles and the file can be removed.
      parser.destroy();
      // Drain what the client still sends so it can read our answer, within the upload limit.
      req.resume();
      finish();
    };
    const stopWatch =
      limits.idleTimeoutMs === undefined
        ? () => undefined
        : watchUpload(
            req,
            { idleTimeoutMs: limits.idleTimeoutMs, minBytesPerSecond: limits.minBytesPerSecond ?? 0 },
            fail,
          );
    const finish = (): void => {
      if (settled) return;
      settled = true;
      stopWatch();
      void Promise.allSettled(writes).then(() => {
        if (failure) reject(failure);
        else resolve(upload);
      });
    };
    const claim = (name: string): boolean => {
      if (seen.has(name)) {
        fail(badRequest(`The part "${printable(name)}" appears more than once`));
        return false;
      }
      seen.add(name);
      return true;
    };
    const acceptJsondata = (text: string): void => {
      upload.jsondata = text;
      try {
        options.onJsondata?.(text);
      } catch (error) {
        fail(error);
      }
    };

    // An exception in a parser callback would be uncaught (a crash): it fails the request instead.
    const guarded =
      <A extends unknown[]>(handler: (...args: A) => void) =>
      (...args: A): void => {
        try {
          handler(...args);
        } catch (error) {
          fail(error);
        }
      };
    /** busboy passes `undefined` for a part whose Content-Disposition has no name (found by test/e2e/fuzz-intake.test.ts). */
    const nameless = (name: string | undefined): boolean => {
      if (typeof name === 'string' && name !== '') return false;
      fail(badRequest('A part has no name: expected jsondata and attachment'));
      return true;
    };

    parser.on(
      'field',
      guarded((name: string, value: string, info: busboy.FieldInfo) => {
        if (failure || nameless(name)) return;
        if (info.nameTruncated || info.valueTruncated) {
          fail(badRequest(`The field "${printable(name)}" is larger than ${limits.maxFieldBytes} bytes`));
          return;
        }
        if (!claim(name)) return;
        if (name === 'jsondata') acceptJsondata(value);
        else if (options.textFields.includes(name)) upload.fields[name] = value;
        else if (options.fileFields.includes(name)) {
          // file-parts.ts marks audio parts as files; one that still arrives as decoded text cannot be restored.
          fail(badRequest(`The ${printable(name)} part could not be read as binary: send it with a filename`));
        } else fail(badRequest(`Unknown part "${printable(name)}": expected jsondata and attachment`));
      }),
    );

    parser.on(
      'file',
      guarded((name: string, stream: Readable, info: busboy.FileInfo) => {
        // A failure destroys the parser, which destroys the part being read: its error is already reported, never unhandled.
        stream.on('error', () => undefined);
        if (failure || nameless(name) || !claim(name)) {
          stream.resume();
          return;
        }
        const originalName = info.filename;
        if (originalName !== undefined && originalName.length > limits.maxFilenameLength) {
          stream.resume();
          fail(badRequest(`The filename is longer than ${limits.maxFilenameLength} characters`));
          return;
        }
        if (name === 'jsondata') {
          const chunks: Buffer[] = [];
          let size = 0;
          stream.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= limits.maxFieldBytes) chunks.push(c);
          });
          stream.on('end', () => {
            if (size > limits.maxFieldBytes) fail(badRequest(`jsondata is larger than ${limits.maxFieldBytes} bytes`));
            else acceptJsondata(Buffer.concat(chunks).toString('utf8'));
          });
          return;
        }
        if (!options.fileFields.includes(name)) {
          stream.resume();
          fail(badRequest(`Unknown part "${printable(name)}": expected jsondata and attachment`));
          return;
        }
        const file = path.join(options.jobDir, `in-${name}`);
        const received: ReceivedFile = {
          field: name,
          path: file,
          bytes: 0,
          originalName,
          extension: extensionOf(originalName),
          declaredType: info.mimeType,
        };
        upload.files[name] = received;
        const before = counter.bytes;
        const hash = createHash('sha256');
        writes.push(
          pipeline(
            stream,
            byteLimiter(limits.maxUploadBytes, counter),
            hashing(hash),
            createWriteStream(file, WRITE_OPTIONS),
          ).then(
            () => {
              received.bytes = counter.bytes - before;
              received.sha256 = hash.digest('hex');
            },
            (error: unknown) => {
              stream.resume();
              fail(error);
            },
          ),
        );
      }),
    );

    parser.on('partsLimit', () => fail(badRequest(`Too many parts (the limit is ${limits.maxParts})`)));
    parser.on('filesLimit', () => fail(badRequest(`Too many files (the limit is ${limits.maxParts})`)));
    parser.on('fieldsLimit', () => fail(badRequest(`Too many fields (the limit is ${limits.maxParts})`)));
    parser.on('error', (error: unknown) => fail(error));
    parser.on('close', () => {
      upload.totalBytes = counter.bytes;
      finish();
    });
    req.on('aborted', () => fail(badRequest('The client closed the connection before the upload ended')));
    req.on('error', (error) => fail(error));
    options.signal?.addEventListener('abort', () => fail(badRequest('The request was aborted')), { once: true });
    req.pipe(marker).pipe(parser);
  }).catch(async (error: unknown) => {
    await Promise.allSettled(Object.values(upload.files).map((f) => rm(f.path, { force: true })));
    throw error;
  });
}

/**
 * Up to 1 MiB of the upload is buffered while the previous write is in the kernel, then written in one writev:
 * with the default 16 KiB, every socket chunk waits for its own write, and the socket for it (issue 11, row b).
 */
const WRITE_OPTIONS = { highWaterMark: 1024 * 1024 };

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A part name as it may appear in an error message: printable ASCII only, bounded. */
function printable(name: string | undefined): string {
  return String(name ?? '')
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/"/g, "'")
    .slice(0, 64);
}
