/**
 * Reads Imagicle's multipart body with busboy: `jsondata` kept as text
 * (bounded), `attachment` streamed to a file, never held in memory.
 * Structural oddities are collected as problems; a body that cannot be parsed
 * at all (not multipart, truncated, malformed) throws reason 0.
 */
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy, { type Busboy } from 'busboy';
import { badRequest } from '../errors.js';

export interface IntakeLimits {
  maxFileBytes: number;
  maxJsonBytes: number;
}

export interface ReceivedJson {
  text: string;
  contentType: string;
  truncated: boolean;
}

interface ReceivedAttachment {
  filename: string | undefined;
  contentType: string;
  bytes: number;
  /** The attachment was longer than `maxFileBytes` (the file holds only the first bytes). */
  truncated: boolean;
}

export interface ReceivedUpload {
  jsondata?: ReceivedJson;
  attachment?: ReceivedAttachment;
  /** What makes the form not Imagicle's (unknown, repeated or misplaced parts). */
  problems: string[];
}

const JSONDATA = 'jsondata';
const ATTACHMENT = 'attachment';

function createParser(headers: IncomingHttpHeaders, limits: IntakeLimits): Busboy {
  try {
    return busboy({
      headers,
      defParamCharset: 'utf8',
      limits: {
        fileSize: limits.maxFileBytes,
        fieldSize: limits.maxJsonBytes,
        fields: 8,
        files: 8,
        parts: 16,
        headerPairs: 32,
      },
    });
  } catch (error) {
    throw badRequest('The request body must be multipart/form-data with a boundary', error);
  }
}

async function readBounded(stream: Readable, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    if (size + buffer.length > maxBytes) {
      truncated = true;
      chunks.push(buffer.subarray(0, maxBytes - size));
      size = maxBytes;
      continue; // keep draining so the parser can go on
    }
    chunks.push(buffer);
    size += buffer.length;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated };
}

/** Parses the body into the upload parts; the attachment goes to `attachmentPath` (created only if present). */
export async function receiveUpload(
  body: Readable,
  headers: IncomingHttpHeaders,
  attachmentPath: string,
  limits: IntakeLimits,
): Promise<ReceivedUpload> {
  const parser = createParser(headers, limits);
  const upload: ReceivedUpload = { problems: [] };
  const seen = new Set<string>();
  const pending: Promise<void>[] = [];
  const track = (work: Promise<void>): void => {
    work.catch(() => undefined); // awaited below; this only prevents an unhandled rejection meanwhile
    pending.push(work);
  };

  const claim = (name: string): boolean => {
    if (name !== JSONDATA && name !== ATTACHMENT) {
      upload.problems.push(`unexpected part '${name}' (only jsondata and attachment are allowed)`);
      return false;
    }
    if (seen.has(name)) {
      upload.problems.push(`the ${name} part appears more than once`);
      return false;
    }
    if (name === ATTACHMENT && !seen.has(JSONDATA)) {
      upload.problems.push('the jsondata part must come before the attachment part');
    }
    seen.add(name);
    return true;
  };

  parser.on('field', (name, value, info) => {
    if (!claim(name)) return;
    if (name === JSONDATA) {
      upload.jsondata = { text: value, contentType: info.mimeType, truncated: info.valueTruncated };
    } else {
      upload.problems.push('the attachment part has no filename');
    }
  });

  parser.on('file', (name, stream, info) => {
    if (!claim(name)) {
      stream.resume();
      return;
    }
    if (name === JSONDATA) {
      track(
        readBounded(stream, limits.maxJsonBytes).then(({ text, truncated }) => {
          upload.jsondata = { text, contentType: info.mimeType, truncated };
        }),
      );
      return;
    }
    const attachment: ReceivedAttachment = {
      filename: info.filename,
      contentType: info.mimeType,
      bytes: 0,
      truncated: false,
    };
    upload.attachment = attachment;
    const out = createWriteStream(attachmentPath, { flags: 'wx' });
    // Settle only once the file is closed, so a caller removing it on failure cannot race its creation.
    const closed = new Promise<void>((resolve) => out.once('close', () => resolve()));
    track(
      pipeline(stream, out)
        .finally(() => closed)
        .then(async () => {
          attachment.truncated = stream.truncated === true;
          attachment.bytes = (await stat(attachmentPath)).size;
        }),
    );
  });

  parser.on('partsLimit', () => upload.problems.push('too many parts'));
  parser.on('filesLimit', () => upload.problems.push('too many file parts'));
  parser.on('fieldsLimit', () => upload.problems.push('too many fields'));

  try {
    await pipeline(body, parser);
  } catch (error) {
    await Promise.allSettled(pending);
    const detail = error instanceof Error ? error.message : String(error);
    throw badRequest(`The multipart body could not be read: ${detail}`, error);
  }
  await Promise.all(pending);
  return upload;
}
