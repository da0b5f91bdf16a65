/**
 * The embedded Imagicle emulator, over real HTTP on port 0, with audio made by ffmpeg.
 */
import { execFile } from 'node:child_process';
import { openAsBlob } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fetch, FormData, type Headers } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import type { StoredRecording } from '../../src/emulator/recording.js';
import { plainWavHeader } from '../../src/media/wav-write.js';

const run = promisify(execFile);
const UPLOAD = '/fw/Apps/Recorder/WebAPI/Recordings';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let work: string;
let emulator: RunningEmulator;
const audio: Record<string, string> = {};

async function ffmpeg(name: string, args: string[]): Promise<void> {
  const out = path.join(work, name);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', ...args, '-bitexact', '-y', out]);
  audio[name] = out;
}

/** A WAV with a plain 16-byte fmt chunk; `formatTag` overrides the tag written (e.g. 3 for float). */
async function craftWav(
  name: string,
  format: Parameters<typeof plainWavHeader>[0],
  dataBytes: number,
  formatTag?: number,
): Promise<void> {
  const out = path.join(work, name);
  const header = plainWavHeader(format, dataBytes);
  if (formatTag !== undefined) header.writeUInt16LE(formatTag, 20);
  await writeFile(out, Buffer.concat([header, Buffer.alloc(dataBytes)]));
  audio[name] = out;
}

function metadata(duration: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    direction: 2,
    localParty: { phoneNumber: '376', username: 'giuliano' },
    pbxCallId: '1',
    preserved: true,
    duration,
    notes: 'text describing recording content',
    startDateTime: '2018-09-25T13:00:00.0000000Z',
    remoteParty: { phoneNumber: '123456' },
    ...extra,
  };
}

interface UploadOptions {
  /** Metadata object, raw text, or null to leave the part out. */
  jsondata?: Record<string, unknown> | string | null;
  /** Send jsondata as a part with Content-Type application/json (and a filename, as Blobs get one). */
  jsonAsBlob?: boolean;
  /** Path of the audio, or null to leave the part out. */
  file?: string | null;
  contentType?: string;
  filename?: string;
  headers?: Record<string, string>;
  base?: string;
}

interface UploadAnswer {
  status: number;
  body: unknown;
  headers: Headers;
}

async function upload(options: UploadOptions): Promise<UploadAnswer> {
  const form = new FormData();
  const json = options.jsondata === undefined ? metadata('PT1.5S') : options.jsondata;
  if (json !== null) {
    const text = typeof json === 'string' ? json : JSON.stringify(json);
    if (options.jsonAsBlob) form.append('jsondata', new Blob([text], { type: 'application/json' }));
    else form.append('jsondata', text);
  }
  const file = options.file === undefined ? audio['pcm16.wav'] : options.file;
  if (file !== null && file !== undefined) {
    const blob = await openAsBlob(file, { type: options.contentType ?? 'audio/wave' });
    form.append('attachment', blob, options.filename ?? path.basename(file));
  }
  const res = await fetch(`${options.base ?? emulator.url}${UPLOAD}`, {
    method: 'POST',
    body: form,
    headers: options.headers ?? {},
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), headers: res.headers };
}

async function recordings(base = emulator.url, headers: Record<string, string> = {}): Promise<StoredRecording[]> {
  const res = await fetch(`${base}/emulator/recordings`, { headers });
  return (await res.json()) as StoredRecording[];
}

async function stats(): Promise<Record<string, number>> {
  return (await (await fetch(`${emulator.url}/emulator/stats`)).json()) as Record<string, number>;
}

/** Waits until the storage folder holds no upload in progress. */
async function noTempFiles(dir: string): Promise<string[]> {
  let left: string[] = [];
  for (let i = 0; i < 50; i += 1) {
    left = (await readdir(dir)).filter((n) => n.startsWith('.upload-') || n.endsWith('.tmp'));
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return left;
}

function expectImagicleError(answer: UploadAnswer, status: number, reason: number): string {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.body).toMatchObject({ reason, message: expect.any(String) });
  return (answer.body as { message: string }).message;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'emulator-test-'));
  const sine = (rate: number, seconds: number) => ['-i', `sine=frequency=440:sample_rate=${rate}:duration=${seconds}`];
  await Promise.all([
    ffmpeg('pcm16.wav', [...sine(8000, 1.5), '-c:a', 'pcm_s16le']),
    ffmpeg('pcm8.wav', [...sine(8000, 1), '-c:a', 'pcm_u8']),
    ffmpeg('alaw-stereo.wav', [...sine(8000, 1.5), '-ac', '2', '-c:a', 'pcm_alaw']),
    ffmpeg('mulaw.wav', [...sine(16000, 0.25), '-c:a', 'pcm_mulaw']),
    ffmpeg('sine.mp3', [...sine(8000, 1.5), '-c:a', 'libmp3lame', '-b:a', '32k']),
    ffmpeg('float.wav', [...sine(8000, 1.5), '-c:a', 'pcm_f32le']),
    ffmpeg('s24-ffmpeg.wav', [...sine(8000, 1.5), '-c:a', 'pcm_s24le']),
    ffmpeg('extensible.wav', [...sine(96000, 0.5), '-c:a', 'pcm_s16le']),
    ffmpeg('mp2.mp2', [...sine(16000, 1), '-c:a', 'mp2']),
    craftWav('s24-plain.wav', { formatTag: 1, channels: 1, sampleRate: 8000, bitsPerSample: 24 }, 36_000),
    craftWav('float-plain.wav', { formatTag: 1, channels: 1, sampleRate: 8000, bitsPerSample: 32 }, 48_000, 3),
    craftWav('three-channels.wav', { formatTag: 1, channels: 3, sampleRate: 8000, bitsPerSample: 16 }, 48_000),
  ]);
  const text = path.join(work, 'notes.txt');
  await writeFile(text, 'This is not audio at all, just some text pretending to be a WAV file.\n'.repeat(50));
  audio['notes.txt'] = text;
  // A WAV whose data size field claims more than the file holds.
  const broken = Buffer.from(await readFile(audio['pcm16.wav'] ?? ''));
  const dataAt = broken.indexOf('data', 12, 'latin1');
  broken.writeUInt32LE(broken.readUInt32LE(dataAt + 4) + 4000, dataAt + 4);
  audio['bad-sizes.wav'] = path.join(work, 'bad-sizes.wav');
  await writeFile(audio['bad-sizes.wav'], broken);

  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'store') });
});

afterEach(() => {
  emulator.faults.clear();
});

afterAll(async () => {
  await emulator?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('accepted uploads', () => {
  it('stores a 16-bit PCM WAV and answers 201 with its id as a JSON string', async () => {
    const answer = await upload({ file: audio['pcm16.wav'], jsondata: metadata('PT1.5S') });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatch(UUID_RE);
    const id = answer.body as string;

    const listed = (await recordings()).find((r) => r.id === id);
    expect(listed).toMatchObject({
      id,
      filename: 'pcm16.wav',
      contentType: 'audio/wave',
      authorization: 'none',
      metadata: { duration: 'PT1.5S', localParty: { username: 'giuliano', phoneNumber: '376' } },
      format: { container: 'wav', codec: 'pcm_s16le', channels: 1, sampleRate: 8000, durationSeconds: 1.5 },
    });
    const original = await readFile(audio['pcm16.wav'] ?? '');
    expect(listed?.bytes).toBe(original.length);

    const one = await fetch(`${emulator.url}/emulator/recordings/${id}`);
    expect(((await one.json()) as StoredRecording).id).toBe(id);
    const stored = await fetch(`${emulator.url}/emulator/recordings/${id}/audio`);
    expect(stored.headers.get('content-type')).toBe('audio/wave');
    expect(Buffer.from(await stored.arrayBuffer()).equals(original)).toBe(true);
    expect(emulator.store.audioPath(id)).toBe(path.join(work, 'store', `${id}.wav`));
  });

  it('accepts 8-bit PCM, stereo A-law and u-law WAV with any accepted WAV type, and jsondata as an application/json part', async () => {
    const cases = [
      { file: 'pcm8.wav', duration: 'PT1S', type: 'audio/x-wav', codec: 'pcm_u8', channels: 1, rate: 8000 },
      {
        file: 'alaw-stereo.wav',
        duration: 'PT1.5S',
        type: 'audio/vnd.wave',
        codec: 'pcm_alaw',
        channels: 2,
        rate: 8000,
      },
      {
        file: 'mulaw.wav',
        duration: 'PT0.25S',
        type: 'audio/wav; charset=binary',
        codec: 'pcm_mulaw',
        channels: 1,
        rate: 16000,
      },
    ];
    for (const c of cases) {
      const answer = await upload({
        file: audio[c.file],
        contentType: c.type,
        jsondata: metadata(c.duration),
        jsonAsBlob: true,
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(201);
      expect(emulator.store.get(answer.body as string)?.format).toEqual({
        container: 'wav',
        codec: c.codec,
        channels: c.channels,
        sampleRate: c.rate,
        durationSeconds: Number.parseFloat(c.duration.slice(2)),
      });
    }
  });

  it('accepts an MP3 sent as audio/mpeg, within one frame of the declared duration', async () => {
    const answer = await upload({ file: audio['sine.mp3'], contentType: 'audio/mpeg', jsondata: metadata('PT1.5S') });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    const stored = emulator.store.get(answer.body as string);
    expect(stored?.format).toMatchObject({ container: 'mp3', codec: 'mp3', channels: 1, sampleRate: 8000 });
    expect(stored?.format.durationSeconds).toBeCloseTo(1.5, 2);
    expect(emulator.store.audioPath(answer.body as string)).toMatch(/\.mp3$/);
    // 576 samples at 8 kHz is 72 ms: 50 ms off is tolerated, 150 ms is not.
    expect(
      (await upload({ file: audio['sine.mp3'], contentType: 'audio/mpeg', jsondata: metadata('PT1.55S') })).status,
    ).toBe(201);
    expectImagicleError(
      await upload({ file: audio['sine.mp3'], contentType: 'audio/mpeg', jsondata: metadata('PT1.65S') }),
      400,
      2,
    );
  });

  it('tolerates 1 ms of difference on a WAV duration, not more', async () => {
    expect((await upload({ jsondata: metadata('PT1.501S') })).status).toBe(201);
    const message = expectImagicleError(await upload({ jsondata: metadata('PT1.502S') }), 400, 2);
    expect(message).toMatch(/duration/);
  });

  it('keeps recordings across a restart of the emulator on the same folder', async () => {
    const before = await recordings();
    const again = await startEmulator({ port: 0, storageDir: path.join(work, 'store') });
    try {
      expect((await recordings(again.url)).map((r) => r.id)).toEqual(before.map((r) => r.id));
    } finally {
      await again.close();
    }
  });
});

describe('refusals, as Imagicle answers them', () => {
  it('answers reason 2 when the declared duration is wrong', async () => {
    const message = expectImagicleError(await upload({ jsondata: metadata('PT1M30S') }), 400, 2);
    expect(message).toMatch(/duration/);
  });

  it('answers reason 0 when jsondata is missing, not JSON, or not an object', async () => {
    expect(expectImagicleError(await upload({ jsondata: null }), 400, 0)).toMatch(/jsondata/);
    expectImagicleError(await upload({ jsondata: '{"direction": 2,' }), 400, 0);
    expectImagicleError(await upload({ jsondata: 'null' }), 400, 0);
    expectImagicleError(await upload({ jsondata: '[1,2]' }), 400, 0);
  });

  it('answers reason 0 when the attachment is missing or has no filename', async () => {
    expect(expectImagicleError(await upload({ file: null }), 400, 0)).toMatch(/attachment/);
    const form = new FormData();
    form.append('jsondata', JSON.stringify(metadata('PT1.5S')));
    form.append('attachment', 'RIFF....WAVE');
    const res = await fetch(`${emulator.url}${UPLOAD}`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ reason: 0, message: expect.stringMatching(/filename/) });
  });

  it('answers reason 0 for a body that is not multipart at all', async () => {
    const empty = await fetch(`${emulator.url}${UPLOAD}`, { method: 'POST' });
    expect(empty.status).toBe(400);
    expect(await empty.json()).toMatchObject({ reason: 0 });
    const json = await fetch(`${emulator.url}${UPLOAD}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(metadata('PT1.5S')),
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ reason: 0 });
    const garbage = await fetch(`${emulator.url}${UPLOAD}`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      body: 'this is \r\n not a multipart body at all',
    });
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toMatchObject({ reason: 0 });
  });

  it('answers reason 1 listing every metadata problem', async () => {
    const bad = metadata('PT1.5S', { direction: 5 });
    delete bad.localParty;
    const message = expectImagicleError(await upload({ jsondata: bad }), 400, 1);
    expect(message).toMatch(/localParty/);
    expect(message).toMatch(/direction/);
    const noDuration = metadata('PT1.5S');
    delete noDuration.duration;
    expect(expectImagicleError(await upload({ jsondata: noDuration }), 400, 1)).toMatch(/duration/);
  });

  it.each([
    ['float.wav', /EXTENSIBLE.*float/],
    ['float-plain.wav', /float/],
    ['s24-plain.wav', /24-bit/],
    ['s24-ffmpeg.wav', /EXTENSIBLE/],
    ['extensible.wav', /EXTENSIBLE/],
    ['three-channels.wav', /channels/],
    ['bad-sizes.wav', /sizes/],
    ['notes.txt', /not a WAV/],
  ])('answers reason 2 for %s', async (name, pattern) => {
    const message = expectImagicleError(await upload({ file: audio[name] }), 400, 2);
    expect(message).toMatch(pattern);
  });

  it('answers reason 2 when the Content-Type is not accepted or disagrees with the content', async () => {
    expect(expectImagicleError(await upload({ contentType: 'audio/mpeg' }), 400, 2)).toMatch(/WAV file/);
    expect(expectImagicleError(await upload({ file: audio['sine.mp3'], contentType: 'audio/wave' }), 400, 2)).toMatch(
      /MPEG/,
    );
    expect(expectImagicleError(await upload({ contentType: 'application/octet-stream' }), 400, 2)).toMatch(
      /Content-Type/,
    );
    expect(expectImagicleError(await upload({ contentType: 'audio/ogg' }), 400, 2)).toMatch(/Content-Type/);
    expect(
      expectImagicleError(
        await upload({ file: audio['mp2.mp2'], contentType: 'audio/mpeg', jsondata: metadata('PT1S') }),
        400,
        2,
      ),
    ).toMatch(/layer/i);
  });

  it('answers reason 2 for a file over the size limit, and leaves no file behind', async () => {
    const dir = path.join(work, 'small-store');
    const small = await startEmulator({ port: 0, storageDir: dir, maxFileBytes: 10_000 });
    try {
      const message = expectImagicleError(await upload({ base: small.url }), 400, 2);
      expect(message).toMatch(/10000 bytes/);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('never keeps the file of a refused upload', async () => {
    const before = (await readdir(path.join(work, 'store'))).length;
    await upload({ file: audio['float.wav'] });
    await upload({ jsondata: metadata('PT9S') });
    await upload({ jsondata: { direction: 1 } });
    expect((await readdir(path.join(work, 'store'))).length).toBe(before);
    expect(await noTempFiles(path.join(work, 'store'))).toEqual([]);
  });
});

describe('authentication', () => {
  let secured: RunningEmulator;
  beforeAll(async () => {
    secured = await startEmulator({
      port: 0,
      storageDir: path.join(work, 'secured'),
      username: 'api',
      password: 's3cret:pw',
    });
  });
  afterAll(async () => {
    await secured?.close();
  });
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('answers 401 without credentials or with wrong ones', async () => {
    const none = await upload({ base: secured.url });
    expectImagicleError(none, 401, 0);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
    expectImagicleError(await upload({ base: secured.url, headers: { authorization: basic('api', 'wrong') } }), 401, 0);
    expectImagicleError(
      await upload({ base: secured.url, headers: { authorization: basic('other', 's3cret:pw') } }),
      401,
      0,
    );
    expectImagicleError(await upload({ base: secured.url, headers: { authorization: 'Bearer s3cret:pw' } }), 401, 0);
    expect(await recordings(secured.url, { authorization: basic('api', 's3cret:pw') })).toEqual([]);
  });

  it('guards its own /emulator routes with the same credentials', async () => {
    const routes = [
      ['GET', 'recordings'],
      ['DELETE', 'recordings'],
      ['GET', 'faults'],
      ['POST', 'faults'],
      ['GET', 'stats'],
    ];
    for (const [method, route] of routes) {
      const headers = { authorization: basic('api', 'wrong') };
      const res = await fetch(`${secured.url}/emulator/${route}`, { method, headers });
      expect(res.status, `${method} /emulator/${route}`).toBe(401);
      const body = (await res.json()) as { reason: number; message: string };
      expect(body.reason).toBe(0);
      expect(body.message).toMatch(/Authentication is required/);
    }
    expect((await fetch(`${secured.url}/emulator/recordings`)).status).toBe(401);
    const right = { authorization: basic('api', 's3cret:pw') };
    const allowed = await fetch(`${secured.url}/emulator/faults`, { headers: right });
    expect(allowed.status).toBe(200);
  });

  it('accepts the right credentials and records the user, never the password', async () => {
    const answer = await upload({ base: secured.url, headers: { authorization: basic('api', 's3cret:pw') } });
    expect(answer.status).toBe(201);
    const [stored] = await recordings(secured.url, { authorization: basic('api', 's3cret:pw') });
    expect(stored?.authorization).toBe('basic:api');
    const sidecar = await readFile(path.join(work, 'secured', `${String(answer.body)}.json`), 'utf8');
    expect(sidecar).not.toContain('s3cret');
  });
});

describe('fault injection', () => {
  it('answers 503 twice (programmed over HTTP), then imports normally', async () => {
    const programmed = await fetch(`${emulator.url}/emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 503, count: 2, retryAfter: 7 }),
    });
    expect(programmed.status).toBe(201);
    await fetch(`${emulator.url}/emulator/stats`, { method: 'DELETE' });
    const stored = (await recordings()).length;

    for (let i = 0; i < 2; i += 1) {
      const answer = await upload({});
      expectImagicleError(answer, 503, 0);
      expect(answer.headers.get('retry-after')).toBe('7');
    }
    expect((await recordings()).length).toBe(stored);
    expect((await upload({})).status).toBe(201);
    expect(await stats()).toEqual({ requests: 3, accepted: 1, rejected: 0, faulted: 2 });
  });

  it('answers a programmed status with a programmed body, without storing', async () => {
    emulator.faults.add({ status: 201, body: { id: 42 } });
    emulator.faults.add({ status: 502, body: '<html>Bad gateway</html>', contentType: 'text/html' });
    const stored = (await recordings()).length;
    expect(await upload({})).toMatchObject({ status: 201, body: { id: 42 } });
    const res = await fetch(`${emulator.url}${UPLOAD}`, { method: 'POST', body: new FormData() });
    expect(res.status).toBe(502);
    expect(await res.text()).toBe('<html>Bad gateway</html>');
    expect((await recordings()).length).toBe(stored);
  });

  it('resets the connection instead of answering', async () => {
    emulator.faults.add({ reset: true });
    const stored = (await recordings()).length;
    await expect(upload({})).rejects.toThrow();
    expect((await recordings()).length).toBe(stored);
    expect((await upload({})).status).toBe(201);
  });

  it('resets the connection after some body bytes', async () => {
    emulator.faults.add({ resetAfterBodyBytes: 1000 });
    const stored = (await recordings()).length;
    await expect(upload({})).rejects.toThrow();
    expect((await recordings()).length).toBe(stored);
    expect(await noTempFiles(path.join(work, 'store'))).toEqual([]);
  });

  it('delays a normal import', async () => {
    emulator.faults.add({ delayMs: 400 });
    const started = performance.now();
    const answer = await upload({});
    expect(answer.status).toBe(201);
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(emulator.store.get(answer.body as string)).toBeDefined();
  });

  it('lists, refuses invalid and clears faults over HTTP', async () => {
    const invalid = await fetch(`${emulator.url}/emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'soon' }),
    });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ reason: 0 });
    await fetch(`${emulator.url}/emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ status: 500 }, { delayMs: 10, count: 3 }]),
    });
    expect(await (await fetch(`${emulator.url}/emulator/faults`)).json()).toEqual([
      { fault: { status: 500 }, remaining: 1 },
      { fault: { delayMs: 10 }, remaining: 3 },
    ]);
    expect((await fetch(`${emulator.url}/emulator/faults`, { method: 'DELETE' })).status).toBe(204);
    expect(emulator.faults.pending()).toEqual([]);
    expect((await upload({})).status).toBe(201);
  });
});

describe('robustness', () => {
  const head = (length: number) =>
    `POST ${UPLOAD} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: ${length}\r\n\r\n`;
  const partial = async (): Promise<string> => {
    const wav = await readFile(audio['pcm16.wav'] ?? '');
    return (
      '--XYZ\r\nContent-Disposition: form-data; name=jsondata\r\nContent-Type: application/json\r\n\r\n' +
      `${JSON.stringify(metadata('PT1.5S'))}\r\n` +
      '--XYZ\r\nContent-Disposition: form-data; name=attachment; filename=sample.wav\r\nContent-Type: audio/wave\r\n\r\n' +
      wav.subarray(0, 5000).toString('latin1')
    );
  };

  it('survives a client that aborts in the middle of the attachment, and removes the temp file', async () => {
    const body = await partial();
    await new Promise<void>((resolve, reject) => {
      const socket = connect(emulator.port, '127.0.0.1', () => {
        socket.write(head(body.length + 100_000) + body, 'latin1', () => setTimeout(() => socket.destroy(), 100));
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    expect(await noTempFiles(path.join(work, 'store'))).toEqual([]);
    expect((await fetch(`${emulator.url}/emulator/health`)).status).toBe(200);
  });

  it('answers reason 0 to a multipart body that ends before its closing boundary', async () => {
    const body = await partial();
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(`${emulator.url}${UPLOAD}`, {
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(Buffer.from(body, 'latin1'));
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toMatchObject({ reason: 0 });
    expect(await noTempFiles(path.join(work, 'store'))).toEqual([]);
  });

  it('survives raw garbage on the socket', async () => {
    await new Promise<void>((resolve) => {
      const socket = connect(emulator.port, '127.0.0.1', () => socket.end('\x00\x01 GARBAGE \r\n\r\n\xff\xfe'));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
      socket.resume();
    });
    expect((await fetch(`${emulator.url}/emulator/health`)).status).toBe(200);
  });

  it('answers unknown routes and methods with an Imagicle-shaped body', async () => {
    const missing = await fetch(`${emulator.url}/emulator/recordings/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ reason: 0 });
    // GET is the list (emulator-reads.test.ts); other methods are not Imagicle's.
    const put = await fetch(`${emulator.url}${UPLOAD}`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');
    expect(await put.json()).toMatchObject({ reason: 0 });
  });

  it('clears the recordings', async () => {
    expect((await recordings()).length).toBeGreaterThan(0);
    expect((await fetch(`${emulator.url}/emulator/recordings`, { method: 'DELETE' })).status).toBe(204);
    expect(await recordings()).toEqual([]);
    expect(await readdir(path.join(work, 'store'))).toEqual([]);
  });
});
