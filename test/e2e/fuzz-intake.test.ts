/**
 * Property test of the multipart intake against a running gateway: a valid
 * upload, mutated at random (cut, bytes flipped, inserted, deleted, copied,
 * headers and boundary replaced), sent byte for byte. The gateway must always
 * answer (never crash, never hang), with 201 or a 4xx in Imagicle's shape, and
 * leave nothing behind. Bounded by numRuns and a time limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { fixture } from '../helpers/fixtures.js';
import { SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { closing, part, postHead, rawRequest, waitFor } from '../helpers/hostile.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { liveProcessCount } from '../../src/media/process.js';

let t: TestGateway;
let valid: Buffer;
const B = 'fuzz-boundary-1';

beforeAll(async () => {
  t = await startTestGateway({ DELIVERY: 'sync', RETRY_MAX_ATTEMPTS: '1' });
  const audio = (await readFile(fixture('pcm16-mono.wav'))).subarray(0, 4044); // a quarter second: a valid, small WAV after repair
  valid = Buffer.concat([
    part(
      B,
      ['Content-Disposition: form-data; name="jsondata"', 'Content-Type: application/json'],
      JSON.stringify(SAMPLE_METADATA),
    ),
    part(
      B,
      ['Content-Disposition: form-data; name="attachment"; filename="call.wav"', 'Content-Type: audio/wav'],
      audio,
    ),
    closing(B),
  ]);
});
afterAll(async () => {
  await t?.close();
});

type Mutation = (body: Buffer) => Buffer;

const position = fc.nat();
const bytes = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => Buffer.from(a));
const tokens = fc.constantFrom(
  `--${B}\r\n`,
  `\r\n--${B}--\r\n`,
  'Content-Disposition: form-data; name="attachment"; filename="x.wav"\r\n\r\n',
  'Content-Disposition: form-data; name="jsondata"\r\n\r\n',
  'Content-Disposition: form-data; filename="no-name.wav"\r\n\r\n',
  'Content-Disposition: form-data; name="att\r\nachment"\r\n\r\n',
  'Content-Disposition: form-data; name="../../etc/passwd"; filename="../../etc/passwd"\r\n\r\n',
  'Content-Disposition: form-data; name="\xff\xfe"; filename*=utf-8\'\'%FF%0D%0A\r\n\r\n',
  `Content-Disposition: form-data; name="attachment"; filename="${'a'.repeat(400)}"\r\n\r\n`,
  '{"direction":',
  '\r\n\r\n',
  '"',
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  position.map(
    (p): Mutation =>
      (b) =>
        b.subarray(0, p % (b.length + 1)),
  ),
  fc.tuple(position, fc.integer({ min: 0, max: 255 })).map(([p, v]): Mutation => (b) => {
    const c = Buffer.from(b);
    c[p % c.length] = v;
    return c;
  }),
  fc.tuple(position, bytes).map(
    ([p, x]): Mutation =>
      (b) =>
        Buffer.concat([b.subarray(0, p % b.length), x, b.subarray(p % b.length)]),
  ),
  fc.tuple(position, fc.integer({ min: 1, max: 400 })).map(
    ([p, n]): Mutation =>
      (b) =>
        Buffer.concat([b.subarray(0, p % b.length), b.subarray((p % b.length) + n)]),
  ),
  fc.tuple(position, position, fc.integer({ min: 1, max: 600 })).map(([from, to, n]): Mutation => (b) => {
    const start = from % b.length;
    return Buffer.concat([b.subarray(0, to % b.length), b.subarray(start, start + n), b.subarray(to % b.length)]);
  }),
  fc.tuple(position, tokens).map(
    ([p, token]): Mutation =>
      (b) =>
        Buffer.concat([b.subarray(0, p % b.length), Buffer.from(token, 'latin1'), b.subarray(p % b.length)]),
  ),
);

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant(`multipart/form-data; boundary=${B}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'multipart/form-data',
      `multipart/form-data; boundary="${B}"`,
      `multipart/form-data; boundary=${B}; boundary=other`,
      'text/plain',
      'multipart/form-data; boundary=',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.string({ maxLength: 60 }).map((s) => `multipart/form-data; boundary=${s.replace(/[\r\n]/g, '')}`),
  },
);

describe('mutated multipart bodies', () => {
  it('always get an answer: 201, or a 4xx in Imagicle shape; the process stays up', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), contentType, async (mutations, type) => {
        const body = mutations.reduce((b, m) => m(b), valid);
        const res = await rawRequest(t.url, postHead(RECORDINGS_PATH, type, body.length), body, { timeoutMs: 15_000 });
        expect(res.noAnswer, `no answer for a ${body.length}-byte body`).toBe(false);
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        if (res.status === 201) return;
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        const answer = JSON.parse(res.body) as { reason: unknown; message: unknown };
        expect(Object.keys(answer).sort()).toEqual(['message', 'reason']);
        expect([0, 1, 2]).toContain(answer.reason);
        expect(typeof answer.message).toBe('string');
      }),
      { numRuns: 120, interruptAfterTimeLimit: 6000 },
    );
    if (process.env.HARDENING_REPORT)
      process.stdout.write(`fuzz-intake answers: ${JSON.stringify(Object.fromEntries(seen))}\n`);
    // Mutations must reach past the first refusal: more than one kind of answer.
    expect(seen.size).toBeGreaterThan(1);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect(await waitFor(async () => (await t.tempEntries()).length === 0 && liveProcessCount() === 0, 5000)).toBe(
      true,
    );
  }, 30_000);
});
