/**
 * Waveform pictures of a job (GET /v1/jobs/{id}/waveform/{channel}.png):
 * drawn on demand (in Node: the output is a WAV) while the spool holds the
 * audio, cached in the job's folder and kept after delivery; 410 once the
 * audio is gone and no picture was drawn (WAVEFORMS_ON_DELIVERY=false).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/fixtures.js';
import { probePicture, type ProbedPicture } from '../helpers/audio.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';

let t: TestGateway;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'waveform-'));
  // RECONCILE=off: a 500 holds the job (with Imagicle's reads it would be asked about and sent again).
  t = await startTestGateway({ WAVEFORMS_ON_DELIVERY: 'false', RETRY_MAX_ATTEMPTS: '1', RECONCILE: 'off' });
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const upload = async (file: string, pbxCallId: string): Promise<string> => {
  const res = await fetch(`${t.url}/v1/recordings`, {
    method: 'POST',
    body: await recordingForm(file, { ...SAMPLE_METADATA, pbxCallId }),
  });
  const id = res.headers.get('x-job-id');
  expect(id).toBeTruthy();
  return id!;
};

/** The picture an answer carries, as ffprobe reads it. */
async function probePng(bytes: ArrayBuffer): Promise<ProbedPicture> {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.png`);
  await writeFile(file, Buffer.from(bytes));
  return probePicture(file);
}

describe('job waveforms', () => {
  it('draws each channel on demand while the audio is spooled, caches it, and keeps it after delivery', async () => {
    t.emulator.faults.add({ status: 500 });
    const held = await upload(fixture('opus-stereo.opus'), 'wave-held');
    const jobDir = t.gateway.delivery!.spool.jobDir(held);
    expect((await readdir(jobDir)).filter((f) => f.endsWith('.png'))).toEqual([]);
    for (const channel of [0, 1]) {
      const res = await fetch(`${t.url}/v1/jobs/${held}/waveform/${channel}.png`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      // pal8: drawn in Node (waveform-wav.ts) from the WAV output; ffmpeg's pictures are rgba.
      expect(await probePng(await res.arrayBuffer())).toEqual({
        codec_name: 'png',
        width: 800,
        height: 120,
        pix_fmt: 'pal8',
      });
    }
    expect((await readdir(jobDir)).filter((f) => f.endsWith('.png')).sort()).toEqual([
      'waveform-0.png',
      'waveform-1.png',
    ]);
    const missing = await fetch(`${t.url}/v1/jobs/${held}/waveform/2.png`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ reason: 0, message: expect.stringContaining('has 2 channels') });

    expect((await fetch(`${t.url}/v1/jobs/${held}/retry`, { method: 'POST' })).status).toBe(202);
    for (let i = 0; i < 100 && t.gateway.delivery!.spool.get(held)?.state !== 'delivered'; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(t.gateway.delivery!.spool.get(held)?.state).toBe('delivered');
    // The audio is gone; the pictures stay. (The record says delivered before its journal write and the prune that
    // follow it have finished: the folder is read once they have.)
    const settled = ['job.json', 'waveform-0.png', 'waveform-1.png'];
    for (let i = 0; i < 100 && JSON.stringify((await readdir(jobDir)).sort()) !== JSON.stringify(settled); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect((await readdir(jobDir)).sort()).toEqual(settled);
    expect((await fetch(`${t.url}/v1/jobs/${held}/waveform/1.png`)).status).toBe(200);
  });

  it('answers 410 for a delivered job whose audio went before any picture was drawn', async () => {
    const delivered = await upload(fixture('pcm16-mono.wav'), 'wave-gone');
    const res = await fetch(`${t.url}/v1/jobs/${delivered}/waveform/0.png`);
    expect(res.status).toBe(410);
    expect(await res.json()).toEqual({ reason: 0, message: expect.stringContaining('no longer kept') });
    expect((await fetch(`${t.url}/v1/jobs/00000000-0000-0000-0000-000000000000/waveform/0.png`)).status).toBe(404);
    expect(await t.settledTempEntries()).toEqual([]);
  });
});
