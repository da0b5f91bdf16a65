/**
 * Issue 10 end to end: VOX with a per-request rate, headers Imagicle refuses
 * (the emulator refuses them too, so a pass-through would fail here), and
 * audio parts sent without a filename.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { closing, part, postHead, rawRequest } from '../helpers/hostile.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { readWavInfo } from '../../src/media/wav.js';
import { plainWavHeader } from '../../src/media/wav-write.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../fixtures/make-real-world.sh', import.meta.url));
const tools = ['sox', 'sndfile-convert', 'speexenc', 'python3'];
const missing: string[] = [];
for (const tool of tools) await run('sh', ['-c', `command -v ${tool}`]).catch(() => missing.push(tool));
if (missing.length > 0 && process.env.CI) throw new Error(`CI must install ${missing.join(', ')} (see .ci/run)`);
if (missing.length > 0) console.warn(`e2e/real-world.test.ts skipped: ${missing.join(', ')} not on PATH`);
const describeTools = missing.length === 0 ? describe : describe.skip;

let t: TestGateway;
let root = '';
const file = (name: string): string => path.join(root, name);
beforeAll(async () => {
  t = await startTestGateway();
  root = await mkdtemp(path.join(os.tmpdir(), 'real-world-e2e-'));
  if (missing.length === 0) await run('bash', [SCRIPT, root]);
});
afterAll(async () => {
  await t?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function postForm(form: FormData, query = ''): Promise<{ status: number; body: string }> {
  const res = await fetch(`${t.url}${RECORDINGS_PATH}${query}`, { method: 'POST', body: form });
  return { status: res.status, body: await res.text() };
}

/** Posts straight to the emulator, declaring the duration a pass-through would have declared. */
async function postToEmulator(name: string, duration: string): Promise<{ status: number; body: string }> {
  const contentType = name.endsWith('.mp3') ? 'audio/mpeg' : 'audio/wav';
  const form = await recordingForm(file(name), { ...SAMPLE_METADATA, duration }, { contentType });
  const res = await fetch(`${t.emulator.url}${RECORDINGS_PATH}`, { method: 'POST', body: form });
  return { status: res.status, body: await res.text() };
}

const lastStored = () => t.emulator.store.list().at(-1)!;

describeTools('Dialogic VOX', () => {
  it('is read at VOX_SAMPLE_RATE (6000) by default', async () => {
    const res = await postForm(await recordingForm(file('vox-6k.vox')));
    expect(res.status, res.body).toBe(201);
    const bytes = (await stat(file('vox-6k.vox'))).size;
    expect(Math.abs(lastStored().format.durationSeconds - (bytes * 2) / 6000)).toBeLessThanOrEqual(1 / 8000);
  });

  it('takes inputSampleRate from the form or the query string', async () => {
    const bytes = (await stat(file('vox-8k.vox'))).size;
    const form = await recordingForm(file('vox-8k.vox'));
    form.append('inputSampleRate', '8000');
    const fromForm = await postForm(form);
    expect(fromForm.status, fromForm.body).toBe(201);
    expect(lastStored().format.durationSeconds).toBe((bytes * 2) / 8000);
    const fromQuery = await postForm(await recordingForm(file('vox-8k.vox')), '?inputSampleRate=8000');
    expect(fromQuery.status, fromQuery.body).toBe(201);
    expect(lastStored().format.durationSeconds).toBe((bytes * 2) / 8000);
  });

  it('refuses a nonsense inputSampleRate with reason 0', async () => {
    const res = await postForm(await recordingForm(file('vox-8k.vox')), '?inputSampleRate=8');
    expect(res.status).toBe(400);
    const message = expect.stringMatching(/inputSampleRate/) as unknown as string;
    expect(JSON.parse(res.body)).toEqual({ reason: 0, message });
  });
});

describeTools('self-consistent headers: the emulator refuses what Imagicle refuses, the gateway repairs it', () => {
  it.each([
    ['pcm16-block-align-4.wav', 'PT0.61725S', /block align 4/],
    ['pcm16-byte-rate-wrong.wav', 'PT1.2345S', /byte rate 12345/],
    ['pcm16-rate-ffffffff.wav', 'PT0S', /sample rate 4294967295/],
    ['mp3-id3-flood.mp3', 'PT1.44S', /20000 ID3v2 tags/],
  ])('%s: refused by the emulator as it is', async (name, duration, message) => {
    const res = await postToEmulator(name, duration);
    expect(res.status).toBe(400);
    expect((JSON.parse(res.body) as { message: string }).message).toMatch(message);
  });

  it.each(['pcm16-block-align-4.wav', 'pcm16-byte-rate-wrong.wav', 'mp3-id3-flood.mp3', 'ext-pcm16-16k-stereo.wav'])(
    '%s: repaired by the gateway and accepted',
    async (name) => {
      const res = await postForm(await recordingForm(file(name)));
      expect(res.status, res.body).toBe(201);
      const stored = lastStored();
      expect(stored.format.durationSeconds).toBeGreaterThan(1);
    },
  );

  it('a WAV with an impossible rate gets a clear 400 from the gateway', async () => {
    const res = await postForm(await recordingForm(file('pcm16-rate-ffffffff.wav')));
    expect(res.status).toBe(400);
    expect((JSON.parse(res.body) as { message: string }).message).toMatch(/not a real sample rate/);
  });
});

describe('audio parts without a filename are binary', () => {
  /** A PCM16 WAV whose bytes are not valid UTF-8 (every byte value occurs). */
  function binaryWav(frames: number): Buffer {
    const data = Buffer.alloc(frames * 2);
    for (let i = 0; i < frames; i++) {
      data.writeInt16LE(Math.round(12000 * Math.sin(i / 3) + ((i * 7919) % 2001) - 1000), i * 2);
    }
    const header = plainWavHeader({ formatTag: 1, channels: 1, sampleRate: 8000, bitsPerSample: 16 }, data.length);
    return Buffer.concat([header, data]);
  }

  it.each([
    ['60,000 bytes, audio/wav', 29_978, 'audio/wav'],
    ['300,000 bytes, claiming to be UTF-8 text', 149_978, 'text/plain; charset=utf-8'],
  ])('%s: forwarded byte for byte', async (_name, frames, contentType) => {
    const wav = binaryWav(frames);
    const boundary = 'x-real-world-boundary';
    const body = Buffer.concat([
      part(
        boundary,
        ['Content-Disposition: form-data; name="jsondata"', 'Content-Type: application/json'],
        JSON.stringify(SAMPLE_METADATA),
      ),
      part(boundary, ['Content-Disposition: form-data; name="attachment"', `Content-Type: ${contentType}`], wav),
      closing(boundary),
    ]);
    const head = postHead(RECORDINGS_PATH, `multipart/form-data; boundary=${boundary}`, body.length);
    const res = await rawRequest(t.url, head, body);
    expect(res.status, res.body).toBe(201);
    const stored = await readFile(t.emulator.store.audioPath(lastStored().id)!);
    expect(stored.length).toBe(wav.length);
    expect(stored.equals(wav)).toBe(true);
    const info = (await readWavInfo(t.emulator.store.audioPath(lastStored().id)!))!;
    expect(info.frames).toBe(frames);
  });

  it('leaves no temp files behind', async () => {
    expect(await t.settledTempEntries()).toEqual([]);
  });
});
