/**
 * Level normalization through HTTP (gateway + emulator on port 0): two legs
 * at very different levels, `level=speech` per request, the report per
 * channel, and what Imagicle (the emulator) received, measured by ffmpeg.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAsBlob } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { meter } from '../helpers/meter.js';
import { ff, say } from '../helpers/speech.js';

const RATE = 8000;
let t: TestGateway;
let leveling: TestGateway;
let root: string;
const file = (name: string) => path.join(root, name);

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'level-e2e-'));
  [t, leveling] = await Promise.all([startTestGateway(), startTestGateway({ LEVEL: 'speech' })]);
  await Promise.all([
    say('Good morning, you are speaking with Marco.', 'en-us', file('agent.22k.wav')),
    say('Hello Marco, I need a new invoice.', 'en-gb+f4', file('customer.22k.wav')),
  ]);
  await Promise.all([
    // A soft agent on a headset (about −40 dBFS) and a customer at about −21 dBFS with a DC offset, as two legs.
    ff(
      '-i',
      file('agent.22k.wav'),
      '-ar',
      '8000',
      '-ac',
      '1',
      '-af',
      'volume=-20dB',
      '-c:a',
      'pcm_s16le',
      file('agent.wav'),
    ),
    ff(
      '-i',
      file('customer.22k.wav'),
      '-ar',
      '8000',
      '-ac',
      '1',
      '-af',
      'volume=-2dB,aeval=val(0)+0.03:c=same',
      '-c:a',
      'pcm_s16le',
      file('customer.wav'),
    ),
  ]);
});

afterAll(async () => {
  await Promise.all([t?.close(), leveling?.close()]);
  await rm(root, { recursive: true, force: true });
});

async function form(fields: Record<string, string> = {}): Promise<FormData> {
  const f = new FormData();
  f.append('jsondata', new Blob([JSON.stringify(SAMPLE_METADATA)], { type: 'application/json' }));
  f.append('attachment', await openAsBlob(file('agent.wav')), 'agent.wav');
  f.append('remoteAttachment', await openAsBlob(file('customer.wav')), 'customer.wav');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

interface LevelChannel {
  channel: string;
  outcome: string;
  gainDb: number;
  dcRemoved: boolean;
  before: { speechDbfs: number };
  after: { speechDbfs: number; truePeakDbfs: number };
  limiter: { acted: boolean };
}

describe('level normalization over HTTP', () => {
  it('level=speech in the query: both parties at −20 dBFS in what Imagicle receives; the report says how', async () => {
    const res = await fetch(`${t.url}/v1/recordings?level=speech`, { method: 'POST', body: await form() });
    const report = (await res.json()) as {
      output: { samples: number };
      level: { decidedBy: string; channels: LevelChannel[] };
    };
    expect(res.status, JSON.stringify(report)).toBe(201);
    expect(report.level.decidedBy).toBe('level=speech in the request');
    const [left, right] = report.level.channels;
    expect(left).toMatchObject({ channel: 'left', outcome: 'applied', dcRemoved: false });
    expect(left!.before.speechDbfs).toBeLessThan(-35);
    expect(left!.gainDb).toBeGreaterThan(14);
    // The customer's speech is already within 1 dB of the target: only its DC goes.
    expect(right).toMatchObject({ channel: 'right', outcome: 'in-range', gainDb: 0, dcRemoved: true });

    const rec = t.emulator.store.list().at(-1)!;
    const received = t.emulator.store.audioPath(rec.id)!;
    const measured = await meter(received, 2, RATE);
    for (const side of measured) {
      expect(Math.abs(side.speechDbfs! - -20)).toBeLessThanOrEqual(1);
      expect(Math.abs(side.dcOffset)).toBeLessThan(0.001);
      expect(side.truePeakDbfs).toBeLessThanOrEqual(-1);
    }
    expect(rec.format.channels).toBe(2);
  });

  it('LEVEL=speech applies by default; level=off in the form turns it off for one request', async () => {
    const on = await fetch(`${leveling.url}/v1/recordings`, { method: 'POST', body: await form() });
    const onReport = (await on.json()) as {
      level?: { decidedBy: string; action: string };
      output: { samples: number };
    };
    expect(on.status).toBe(201);
    expect(onReport.level).toMatchObject({ decidedBy: 'LEVEL=speech', action: 'normalized' });

    const off = await fetch(`${leveling.url}/v1/recordings`, { method: 'POST', body: await form({ level: 'off' }) });
    const offReport = (await off.json()) as { level?: unknown; output: { samples: number } };
    expect(off.status).toBe(201);
    expect(offReport.level).toBeUndefined();
    // The same call, the same length to the sample, with or without normalization.
    expect(offReport.output.samples).toBe(onReport.output.samples);
  });

  it('refuses an unknown level with reason 0 and 400', async () => {
    const res = await fetch(`${t.url}/v1/recordings?level=loud`, { method: 'POST', body: await form() });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { reason: number; message: string };
    expect(body.reason).toBe(0);
    expect(body.message).toMatch(/level must be one of off, speech/);
  });
});
