import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { boundaryOf, fileFieldMarker } from '../../src/http/file-parts.js';

const B = 'b0und4ry';
/** Binary bytes with a partial delimiter in them. */
const AUDIO = 'RIFF\xff\xfe--b0und';
const body = (parts: Array<[string[], string]>): Buffer =>
  Buffer.concat([
    ...parts.map(([headers, content]) =>
      Buffer.from(`--${B}\r\n${headers.join('\r\n')}\r\n\r\n${content}\r\n`, 'latin1'),
    ),
    Buffer.from(`--${B}--\r\n`, 'latin1'),
  ]);

async function mark(input: Buffer, chunkSize: number): Promise<string> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; at += chunkSize) chunks.push(input.subarray(at, at + chunkSize));
  const marked = Readable.from(chunks).pipe(fileFieldMarker(B, ['attachment', 'remoteAttachment']));
  return (await buffer(marked)).toString('latin1');
}

describe('fileFieldMarker', () => {
  const input = body([
    [['Content-Disposition: form-data; name="jsondata"', 'Content-Type: application/json'], '{"a":1}'],
    [['Content-Disposition: form-data; name="attachment"', 'Content-Type: text/plain; charset=utf-8'], AUDIO],
    [['content-disposition: form-data; name=remoteAttachment'], '\x00\x01'],
    [['Content-Disposition: form-data; name="notes"'], 'text'],
  ]);
  const expected = body([
    [['Content-Disposition: form-data; name="jsondata"', 'Content-Type: application/json'], '{"a":1}'],
    [['Content-Disposition: form-data; name="attachment"', 'Content-Type: application/octet-stream'], AUDIO],
    [['content-disposition: form-data; name=remoteAttachment', 'Content-Type: application/octet-stream'], '\x00\x01'],
    [['Content-Disposition: form-data; name="notes"'], 'text'],
  ]).toString('latin1');

  it('marks filename-less audio parts as binary, whatever the chunking', async () => {
    for (const size of [1, 2, 3, 7, 11, 64, input.length]) expect(await mark(input, size)).toBe(expected);
  });

  it('leaves parts that have a filename alone', async () => {
    const headers = ['Content-Disposition: form-data; name="attachment"; filename="a.wav"', 'Content-Type: audio/wav'];
    const named = body([[headers, 'x']]);
    expect(await mark(named, 5)).toBe(named.toString('latin1'));
  });

  it('reads the boundary, quoted or not', () => {
    expect(boundaryOf('multipart/form-data; boundary=abc')).toBe('abc');
    expect(boundaryOf('multipart/form-data; boundary="a b;c"')).toBe('a b;c');
    expect(boundaryOf('multipart/form-data')).toBeUndefined();
  });
});
