/**
 * Gateway + embedded emulator on port 0, real ffmpeg, real HTTP.
 * Every input family must reach the emulator (which checks the audio and the
 * declared duration like Imagicle would) with a 201.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { AUDIO_FIXTURES, fixture, SIGNALS } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { decodeFloat, ffprobeFile, rms } from '../helpers/audio.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway();
});
afterAll(async () => {
  await t?.close();
});

const post = async (file: string, metadata: unknown = SAMPLE_METADATA, path = RECORDINGS_PATH, options = {}) =>
  fetch(`${t.url}${path}`, { method: 'POST', body: await recordingForm(file, metadata, options) });

describe('drop-in endpoint: every input family', () => {
  it.each(AUDIO_FIXTURES.map((f) => [f.name, f] as const))('%s → 201, accepted by the emulator', async (_name, f) => {
    const before = t.emulator.store.list().length;
    const res = await post(fixture(f.name));
    const body = await res.text();
    expect(res.status, body).toBe(201);
    const id = JSON.parse(body) as string;
    const stored = t.emulator.store.list();
    expect(stored.length).toBe(before + 1);
    const rec = stored.at(-1)!;
    expect(rec.id).toBe(id);
    const expectedChannels = f.channels > 2 ? 2 : f.channels;
    expect(rec.format.channels).toBe(expectedChannels);
    // The declared duration is the one the emulator measured (it refuses a mismatch over 1 ms for WAV).
    const declared = rec.metadata.duration as string;
    expect(declared).toMatch(/^PT/);
    const audioPath = t.emulator.store.audioPath(id)!;
    const probed = await ffprobeFile(audioPath);
    expect(['pcm_s16le', 'pcm_u8', 'pcm_alaw', 'pcm_mulaw', 'mp3']).toContain(probed.codec);
    expect(probed.channels).toBe(expectedChannels);
    // The emulator's own measure (ffprobe's MP3 duration is an estimate); codecs with frames may pad a little.
    expect(Math.abs(rec.format.durationSeconds - f.seconds)).toBeLessThan(0.1);
    if (f.compliant && f.family !== 'wav-streaming') {
      // Pass-through: byte for byte.
      expect((await readFile(audioPath)).equals(await readFile(fixture(f.name)))).toBe(true);
    }
  });

  it('leaves no temp files behind', async () => {
    expect(await t.settledTempEntries()).toEqual([]);
  });
});

describe('exact duration and format', () => {
  it('declares the duration to the sample (WAV)', async () => {
    const res = await post(fixture('opus-stereo.opus'), SAMPLE_METADATA, '/v1/recordings');
    const report = (await res.json()) as {
      output: { samples: number; sampleRate: number; durationSeconds: number; duration: string };
    };
    expect(res.status).toBe(201);
    expect(report.output.durationSeconds).toBe(report.output.samples / report.output.sampleRate);
    const rec = t.emulator.store.list().at(-1)!;
    expect(rec.metadata.duration).toBe(report.output.duration);
    expect(Math.abs(rec.format.durationSeconds - report.output.durationSeconds)).toBeLessThan(0.001);
  });

  it('replaces a wrong client duration with the measured one', async () => {
    const res = await post(fixture('flac.flac'), { ...SAMPLE_METADATA, duration: 'PT1H' });
    expect(res.status).toBe(201);
    const rec = t.emulator.store.list().at(-1)!;
    expect(rec.metadata.duration).not.toBe('PT1H');
  });

  it('keeps the other metadata fields unchanged, unknown ones included', async () => {
    const metadata = { ...SAMPLE_METADATA, pbxInfo: { node: 'cucm-1' } };
    const res = await post(fixture('aac.m4a'), metadata);
    expect(res.status).toBe(201);
    const { duration: _d, ...sent } = t.emulator.store.list().at(-1)!.metadata;
    expect(sent).toEqual(metadata);
  });

  it('accepts the parts in either order, whatever the attachment type or name', async () => {
    const res = await post(fixture('vorbis.ogg'), SAMPLE_METADATA, RECORDINGS_PATH, {
      attachmentFirst: true,
      contentType: 'text/plain',
      filename: 'x',
    });
    expect(res.status).toBe(201);
  });
});

describe('channels', () => {
  it('keeps the left party on the left (stereo Opus → stereo WAV)', async () => {
    const res = await post(fixture('opus-stereo.opus'));
    expect(res.status).toBe(201);
    const id = (await res.json()) as string;
    const [left, right] = await decodeFloat(t.emulator.store.audioPath(id)!, 2);
    const rate = 8000;
    const total = left!.length / rate;
    const half = total * SIGNALS.leftRight.switchAtFraction;
    // First half: left speaks, right silent; second half: the reverse.
    expect(rms(left!, rate, 0.1, half - 0.1)).toBeGreaterThan(0.1);
    expect(rms(right!, rate, 0.1, half - 0.1)).toBeLessThan(0.01);
    expect(rms(right!, rate, half + 0.1, total - 0.1)).toBeGreaterThan(0.1);
    expect(rms(left!, rate, half + 0.1, total - 0.1)).toBeLessThan(0.01);
  });
});

describe('metadata errors (nothing forwarded)', () => {
  const cases: Array<[string, unknown, number]> = [
    ['not JSON', '{"direction":', 0],
    ['a JSON array', '[1,2]', 0],
    ['missing localParty', { ...SAMPLE_METADATA, localParty: undefined }, 1],
    ['direction 5', { ...SAMPLE_METADATA, direction: 5 }, 1],
    ['bad startDateTime', { ...SAMPLE_METADATA, startDateTime: 'yesterday' }, 1],
    ['bad duration', { ...SAMPLE_METADATA, duration: '90 seconds' }, 1],
    ['preserved as a string', { ...SAMPLE_METADATA, preserved: 'yes' }, 1],
  ];
  it.each(cases)('%s → 400 reason %i', async (_name, metadata, reason) => {
    const before = t.emulator.stats.snapshot().requests;
    const res = await post(fixture('pcm16-mono.wav'), metadata);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { reason: number; message: string };
    expect(body.reason).toBe(reason);
    expect(body.message.length).toBeGreaterThan(10);
    expect(t.emulator.stats.snapshot().requests).toBe(before);
  });

  it('missing jsondata → 400 reason 0', async () => {
    const form = new FormData();
    form.append('attachment', new Blob([await readFile(fixture('pcm16-mono.wav'))]), 'a.wav');
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { reason: number }).reason).toBe(0);
  });

  it('missing attachment → 400 reason 0', async () => {
    const form = new FormData();
    form.append('jsondata', JSON.stringify(SAMPLE_METADATA));
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { reason: number }).reason).toBe(0);
  });

  it('a body that is not multipart → 400 reason 0', async () => {
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { reason: number }).reason).toBe(0);
  });
});

describe('not audio → 400 reason 2, nothing forwarded', () => {
  it.each([
    ['not-audio.txt', /not audio|no known audio/i],
    ['image.png', /png.*not an audio format/i],
    ['empty.wav', /empty/i],
    ['truncated.wav', /.+/],
    ['garbage.mp3', /.+/],
    ['video-only.mp4', /no audio track/i],
  ])('%s', async (name, message) => {
    const before = t.emulator.stats.snapshot().requests;
    const res = await post(fixture(name));
    const body = (await res.json()) as { reason: number; message: string };
    expect(res.status, JSON.stringify(body)).toBe(400);
    expect(body.reason).toBe(2);
    expect(body.message).toMatch(message);
    expect(body.message).not.toContain(t.tmpDir);
    expect(t.emulator.stats.snapshot().requests).toBe(before);
  });
});

describe('upstream answers pass through unchanged', () => {
  it.each([400, 401, 403, 409, 500, 501, 504])('%i', async (status) => {
    const body = { reason: 1, message: `upstream says ${status}` };
    t.emulator.faults.add({ status, body });
    const res = await post(fixture('pcm16-mono.wav'));
    expect(res.status).toBe(status);
    expect(await res.json()).toEqual(body);
  });

  it('an unreachable Imagicle → 502 in Imagicle shape', async () => {
    // DELIVERY=sync: no spool, so the caller gets the 502 (under the default, wait, it gets a 202: test/e2e/delivery.test.ts).
    const down = await startTestGateway({
      IMAGICLE_URL: 'http://127.0.0.1:9',
      DELIVERY: 'sync',
      RETRY_MAX_ATTEMPTS: '1',
    });
    try {
      const res = await fetch(`${down.url}${RECORDINGS_PATH}`, {
        method: 'POST',
        body: await recordingForm(fixture('pcm16-mono.wav')),
      });
      expect(res.status).toBe(502);
      const body = (await res.json()) as { reason: number; message: string };
      expect(body.message).toMatch(/unreachable/);
    } finally {
      await down.close();
    }
  });
});

describe('native endpoints', () => {
  it('/v1/recordings answers a report', async () => {
    const res = await post(fixture('raw.gsm'), SAMPLE_METADATA, '/v1/recordings');
    expect(res.status).toBe(201);
    const report = (await res.json()) as Record<string, Record<string, unknown>>;
    expect(report.input).toMatchObject({ codec: 'gsm', channels: 1, headerless: 'raw GSM 06.10' });
    expect(report.decision).toMatchObject({ action: 'transcode' });
    expect(report.output).toMatchObject({ container: 'wav', codec: 'pcm_s16le', channels: 1, sampleRate: 8000 });
    expect(report.upstream).toMatchObject({ status: 201 });
    expect(typeof report.upstream!.id).toBe('string');
  });

  it('/v1/transcode answers the audio with its duration, without forwarding', async () => {
    const before = t.emulator.stats.snapshot().requests;
    const form = new FormData();
    form.append('attachment', await import('node:fs').then((fs) => fs.openAsBlob(fixture('aac.m4a'))), 'call.m4a');
    const res = await fetch(`${t.url}/v1/transcode`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wave');
    expect(res.headers.get('x-audio-duration')).toMatch(/^PT/);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.subarray(0, 4).toString()).toBe('RIFF');
    expect(t.emulator.stats.snapshot().requests).toBe(before);
  });

  it('/healthz and /readyz', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ffmpeg: { ok: true }, upstream: { reachable: true } });
  });

  it('logs one summary line per upload with a request id', async () => {
    const res = await post(fixture('pcm16-mono.wav'));
    const id = res.headers.get('x-request-id');
    const lines = t.logs.filter((l) => l.includes(id!) && l.includes('upload processed'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ decision: 'pass-through', upstreamStatus: 201 });
  });
});
