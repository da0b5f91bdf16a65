/**
 * DTMF masking over HTTP (gateway + emulator on port 0): `dtmf=mask` as a form field on the native and the
 * drop-in endpoint, what Imagicle (the emulator) receives (multimon-ng hears no key), and the digits played found
 * nowhere: not in the report, the job, the log or the metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAsBlob } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { makeCall, missingTools, multimonKeysIn, speechFor, type DtmfCall } from '../helpers/dtmf-call.js';

/** What the customer types: a card number and a code, with the keys a number in a report could never hold. */
const TYPED = '4929#8173*05';
let t: TestGateway;
let root: string;
let call: DtmfCall;
let missing: string[] = [];

beforeAll(async () => {
  missing = await missingTools();
  if (missing.length > 0) {
    if (process.env.CI) throw new Error(`CI must install ${missing.join(', ')} (see .ci/run)`);
    return;
  }
  root = await mkdtemp(path.join(os.tmpdir(), 'dtmf-e2e-'));
  // The call (about 140 kB as 16-bit stereo) is over the limit, and A-law fits: OVERSIZE=compress re-encodes the
  // masked render, and the job still tells of the masked tones.
  t = await startTestGateway({ MAX_PART_BYTES: String(100_000), OVERSIZE: 'compress', COMPRESS_ORDER: 'alaw' });
  const tones = [...TYPED].map((key) => ({ key, ms: 70 }));
  call = await makeCall(root, 'card', [{ name: 'card', tones, gapMs: 80 }], await speechFor(root));
}, 120_000);

afterAll(async () => {
  await t?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function form(fields: Record<string, string>): Promise<FormData> {
  const f = new FormData();
  f.append('jsondata', new Blob([JSON.stringify(SAMPLE_METADATA)], { type: 'application/json' }));
  f.append('attachment', await openAsBlob(call.wav), 'card.wav');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

/** The typed keys, or any 4 of them in a row, anywhere in `text`. */
function leaks(text: string): string[] {
  const found: string[] = [];
  for (let i = 0; i + 4 <= TYPED.length; i++)
    if (text.includes(TYPED.slice(i, i + 4))) found.push(TYPED.slice(i, i + 4));
  return found;
}

describe('DTMF over HTTP', { timeout: 120_000 }, () => {
  it('native, dtmf=mask in the form: the tones masked before Imagicle stores them; the digits nowhere', async () => {
    if (missing.length > 0) return console.warn(`skipped: ${missing.join(', ')} not installed`);
    // The input holds the keys (an independent decoder hears them).
    expect((await multimonKeysIn(call.wav, 1, call.segments))[0]).toBe(TYPED);

    const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: await form({ dtmf: 'mask' }) });
    const text = await res.text();
    expect(res.status, text).toBe(201);
    const report = JSON.parse(text) as {
      jobId?: string;
      output: { samples: number; codec: string };
      oversize: { action: string };
      dtmf: { action: string; decidedBy: string; tones: number; channels: Array<{ channel: string; tones: number }> };
    };
    expect(report.dtmf).toMatchObject({ action: 'masked', decidedBy: 'dtmf=mask in the request', tones: TYPED.length });
    expect(report.dtmf.channels.map((c) => c.tones)).toEqual([0, TYPED.length]);
    expect(report.output.samples).toBe(call.frames);
    expect(report.oversize.action).toBe('compressed');
    expect(report.output.codec).toBe('pcm_alaw');

    const rec = t.emulator.store.list().at(-1)!;
    const received = t.emulator.store.audioPath(rec.id)!;
    expect((await multimonKeysIn(received, 1, call.segments))[0]).toBe('');

    expect(report.jobId).toBeDefined();
    const job = await (await fetch(`${t.url}/v1/jobs/${report.jobId}`)).text();
    // The job keeps when and how loud, per channel, like the report.
    expect((JSON.parse(job) as { report: { dtmf: { tones: number } } }).report.dtmf.tones).toBe(TYPED.length);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/imagicle_gateway_dtmf_tones_total\{action="masked"\} 12/);
    expect(metrics).toMatch(/imagicle_gateway_dtmf_recordings_total\{action="detected"\} 1/);
    for (const [what, output] of Object.entries({ report: text, job, metrics, log: t.logs.join('') })) {
      expect(leaks(output), what).toEqual([]);
    }
    expect(t.logs.join('')).toMatch(/"msg":"DTMF"/);
  });

  it('drop-in, dtmf as an extra form field; an unknown value is refused with reason 0', async () => {
    if (missing.length > 0) return console.warn(`skipped: ${missing.join(', ')} not installed`);
    const res = await fetch(`${t.url}/fw/Apps/Recorder/WebAPI/Recordings`, {
      method: 'POST',
      body: await form({ dtmf: 'mask' }),
    });
    expect(res.status).toBe(201);
    const received = t.emulator.store.audioPath(t.emulator.store.list().at(-1)!.id)!;
    expect((await multimonKeysIn(received, 1, call.segments))[0]).toBe('');

    const bad = await fetch(`${t.url}/v1/recordings?dtmf=hide`, { method: 'POST', body: await form({}) });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { reason: number; message: string };
    expect(body).toMatchObject({ reason: 0 });
    expect(body.message).toMatch(/dtmf must be one of off, detect, mask/);
  });
});
