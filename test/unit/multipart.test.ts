import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import { asciiFilename, buildMultipart, extendedFilename, sanitiseFilename } from '../../src/imagicle/multipart.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface ParsedPart {
  name: string;
  kind: 'field' | 'file';
  data: Buffer;
  filename?: string | undefined;
  mimeType: string;
}

async function parse(body: Buffer, contentType: string): Promise<ParsedPart[]> {
  const parts: ParsedPart[] = [];
  const pending: Promise<unknown>[] = [];
  const bb = busboy({ headers: { 'content-type': contentType } });
  const done = new Promise<void>((resolve, reject) => {
    bb.on('field', (name, value, info) =>
      parts.push({ name, kind: 'field', data: Buffer.from(value), mimeType: info.mimeType }),
    );
    bb.on('file', (name, stream, info) => {
      const entry: ParsedPart = {
        name,
        kind: 'file',
        data: Buffer.alloc(0),
        filename: info.filename,
        mimeType: info.mimeType,
      };
      parts.push(entry);
      pending.push(collect(stream).then((b) => (entry.data = b)));
    });
    bb.on('close', resolve);
    bb.on('error', reject);
  });
  Readable.from([body]).pipe(bb);
  await done;
  await Promise.all(pending);
  return parts;
}

describe('buildMultipart', () => {
  it('writes Imagicle wire format, parsed back by a real multipart parser', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-'));
    try {
      const audio = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
      const audioPath = path.join(dir, 'a.wav');
      await writeFile(audioPath, audio);
      const metadata = { startDateTime: '2018-09-25T13:00:00.0000000Z', duration: 'PT1M30S', notes: 'è "quoted"' };
      const body = buildMultipart(
        {
          metadataJson: JSON.stringify(metadata),
          audioPath,
          audioBytes: audio.length,
          contentType: 'audio/wave',
          filename: 'sample.wav',
        },
        'XYZ',
      );
      const bytes = await collect(body.stream());
      expect(bytes.length).toBe(body.contentLength);
      const text = bytes.subarray(0, 400).toString('latin1');
      expect(text).toMatch(
        /^--XYZ\r\nContent-Type: application\/json\r\nContent-Disposition: form-data; name=jsondata\r\n\r\n/,
      );
      expect(text).toContain(
        "--XYZ\r\nContent-Type: audio/wave\r\nContent-Disposition: form-data; name=attachment; filename=sample.wav; filename*=utf-8''sample.wav\r\n\r\n",
      );
      expect(bytes.subarray(-9).toString()).toBe('--XYZ--\r\n');

      const parts = await parse(bytes, body.contentType);
      expect(parts.map((p) => p.name)).toEqual(['jsondata', 'attachment']);
      expect(JSON.parse(parts[0]!.data.toString('utf8'))).toEqual(metadata);
      expect(parts[1]!.filename).toBe('sample.wav');
      expect(parts[1]!.mimeType).toBe('audio/wave');
      expect(parts[1]!.data.equals(audio)).toBe(true);

      // A second stream rebuilds the same body (retries send it again from disk).
      expect((await collect(body.stream())).equals(bytes)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails the stream when the file changed size since it was measured', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-'));
    try {
      const audioPath = path.join(dir, 'a.wav');
      await writeFile(audioPath, Buffer.alloc(10));
      const body = buildMultipart({
        metadataJson: '{}',
        audioPath,
        audioBytes: 20,
        contentType: 'audio/wave',
        filename: 'a.wav',
      });
      await expect(collect(body.stream())).rejects.toThrow(/changed/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('filenames', () => {
  it.each([
    ['call.opus', 'wav', 'call.wav'],
    ['../../etc/passwd', 'wav', 'passwd.wav'],
    ['C:\\rec\\2026\\call 1.gsm', 'mp3', 'call 1.mp3'],
    ['evil"\r\nX-Injected: 1.wav', 'wav', 'evilX-Injected: 1.wav'],
    ['', 'wav', 'recording.wav'],
    [undefined, 'wav', 'recording.wav'],
    ['.hidden', 'wav', 'recording.wav'],
    ['chiamata-è.ogg', 'wav', 'chiamata-è.wav'],
  ])('sanitises %j', (input, ext, expected) => {
    expect(sanitiseFilename(input, ext)).toBe(expected);
  });

  it('keeps header-breaking characters out of both filename forms', () => {
    const name = sanitiseFilename('a;b"c\r\nd é.wav', 'wav');
    expect(asciiFilename(name)).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(extendedFilename(name)).toMatch(/^utf-8''[A-Za-z0-9._%-]+$/);
    expect(decodeURIComponent(extendedFilename(name).slice(7))).toBe(name);
  });
});
