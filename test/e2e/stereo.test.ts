/**
 * Stereo for Voice Analytics through HTTP: gateway + embedded emulator on
 * port 0. Two legs in the drop-in and the native form, channel mapping per
 * request, the analysis in the report and the log, fake stereo collapsed.
 * What Imagicle (the emulator) received is decoded and measured per channel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAsBlob } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { decodeFloat } from '../helpers/audio.js';
import {
  decodeStereo,
  energy,
  ff,
  QUIET_RMS,
  say,
  spanOf,
  SPEECH_RMS,
  speechSpan,
  type Span,
} from '../helpers/speech.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const SAMPLES = fileURLToPath(new URL('../../samples/', import.meta.url));
const RATE = 8000;

let t: TestGateway;
let collapsing: TestGateway;
let root: string;
let agent: Span;
let customer: Span;
const file = (name: string) => path.join(root, name);

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stereo-e2e-'));
  [t, collapsing] = await Promise.all([startTestGateway(), startTestGateway({ STEREO_CHECK: 'collapse' })]);
  await say('Good morning, you are speaking with Marco.', 'en-us', file('agent.22k.wav'));
  await say('Hello Marco, I need a new invoice.', 'en-gb+f4', file('customer.22k.wav'));
  await Promise.all([
    ff('-i', file('agent.22k.wav'), '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', file('agent.wav')),
    ff('-i', file('customer.22k.wav'), '-ar', '16000', '-c:a', 'libopus', '-b:a', '24k', file('customer.opus')),
    ff('-i', file('customer.22k.wav'), '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', file('customer.wav')),
    ff('-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '2', '-c:a', 'pcm_s16le', file('silence.wav')),
  ]);
  [agent, customer] = await Promise.all([spanOf(file('agent.wav'), RATE), spanOf(file('customer.wav'), RATE)]);
  await Promise.all([
    // Customer (caller) on channel 1, agent on channel 2 after the customer: a Twilio dual-channel call, as Opus.
    ff(
      '-i',
      file('customer.wav'),
      '-i',
      file('agent.wav'),
      '-filter_complex',
      `[0:a]aformat=channel_layouts=mono,apad=pad_dur=4[c];[1:a]aformat=channel_layouts=mono,adelay=${Math.ceil((customer.end + 0.3) * 1000)}:all=1,apad=pad_dur=1[a];[c][a]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR,atrim=end=${(customer.end + agent.end + 1).toFixed(2)}[out]`,
      '-map',
      '[out]',
      '-ar',
      '48000',
      '-c:a',
      'libopus',
      '-b:a',
      '48k',
      file('twilio.opus'),
    ),
    // The same mix on both channels.
    ff(
      '-i',
      file('agent.wav'),
      '-i',
      file('customer.wav'),
      '-filter_complex',
      `[1:a]adelay=${Math.ceil((agent.end + 0.3) * 1000)}:all=1[c];[0:a][c]amix=inputs=2:duration=longest:normalize=0,pan=stereo|c0=c0|c1=c0[out]`,
      '-map',
      '[out]',
      '-c:a',
      'pcm_s16le',
      file('fake.wav'),
    ),
  ]);
});

afterAll(async () => {
  await Promise.all([t?.close(), collapsing?.close()]);
  await rm(root, { recursive: true, force: true });
});

/** The drop-in form plus our extensions: jsondata, attachment, optional remoteAttachment and text fields. */
async function callForm(
  attachment: string,
  remoteAttachment?: string,
  fields: Record<string, string> = {},
  metadata: unknown = SAMPLE_METADATA,
): Promise<FormData> {
  const form = new FormData();
  form.append('jsondata', new Blob([JSON.stringify(metadata)], { type: 'application/json' }));
  form.append('attachment', await openAsBlob(attachment), path.basename(attachment));
  if (remoteAttachment)
    form.append('remoteAttachment', await openAsBlob(remoteAttachment), path.basename(remoteAttachment));
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

interface Report {
  output: { channels: number; samples: number; sampleRate: number; duration: string; durationSeconds: number };
  upstream: { status: number; id: string };
  stereo?: {
    source: string;
    mapping: { order: string; decidedBy: string; left: string; right: string };
    legs?: Array<{ part: string; party: string; offsetMs: number; codec: string; durationSeconds: number }>;
    analysis?: {
      channels: Array<{
        channel: string;
        party: string;
        rmsDbfs: number | null;
        peakDbfs: number | null;
        speechShare: number;
        silent: boolean;
      }>;
      correlation: number | null;
      fakeStereo: boolean;
      silentChannels: string[];
    };
    check: { policy: string; action: string };
    warnings: string[];
  };
}

const lastRecording = (g: TestGateway) => g.emulator.store.list().at(-1)!;
const receivedAudio = (g: TestGateway) => g.emulator.store.audioPath(lastRecording(g).id)!;

describe('two legs', () => {
  it('drop-in: the README example (agent-leg.wav + customer-leg.ogg) becomes one stereo recording', async () => {
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await callForm(path.join(SAMPLES, 'agent-leg.wav'), path.join(SAMPLES, 'customer-leg.ogg')),
    });
    const body = await res.text();
    expect(res.status, body).toBe(201);
    const rec = lastRecording(t);
    expect(JSON.parse(body)).toBe(rec.id);
    expect(rec.format.channels).toBe(2);
    // The emulator refuses a declared duration 1 ms off; it accepted this one.
    expect(rec.metadata.duration).toMatch(/^PT6\.7/);

    // The agent (local) is on the left and only there, the customer on the right.
    const out = await decodeStereo(receivedAudio(t), RATE);
    const [agentLeg] = await decodeFloat(path.join(SAMPLES, 'agent-leg.wav'), 1);
    const [customerLeg] = await decodeFloat(path.join(SAMPLES, 'customer-leg.ogg'), 1);
    const a = speechSpan(agentLeg!, 8000);
    const c = speechSpan(customerLeg!, 16000);
    expect(energy(out, a.start, a.end).left).toBeGreaterThan(SPEECH_RMS);
    expect(energy(out, a.start, a.end).right).toBeLessThan(QUIET_RMS);
    expect(energy(out, c.start, c.end).right).toBeGreaterThan(SPEECH_RMS);
    expect(energy(out, c.start, c.end).left).toBeLessThan(QUIET_RMS);
  });

  it('native: an offset in the query string aligns the remote leg; the report shows each channel', async () => {
    const offsetMs = Math.ceil((agent.end + 0.5) * 1000);
    const res = await fetch(`${t.url}/v1/recordings?remoteOffsetMs=${offsetMs}`, {
      method: 'POST',
      body: await callForm(file('agent.wav'), file('customer.opus')),
    });
    const report = (await res.json()) as Report;
    expect(res.status, JSON.stringify(report)).toBe(201);
    expect(report.output).toMatchObject({ channels: 2, sampleRate: RATE });
    expect(report.output.durationSeconds).toBe(report.output.samples / RATE);
    expect(report.stereo!.legs!.map((l) => [l.part, l.party, l.codec, l.offsetMs])).toEqual([
      ['attachment', 'local', 'pcm_s16le', 0],
      ['remoteAttachment', 'remote', 'opus', offsetMs],
    ]);
    const channels = report.stereo!.analysis!.channels;
    expect(channels.map((ch) => [ch.channel, ch.party, ch.silent])).toEqual([
      ['left', 'local', false],
      ['right', 'remote', false],
    ]);
    for (const ch of channels) {
      expect(ch.rmsDbfs).toBeLessThan(-10);
      expect(ch.peakDbfs).toBeGreaterThan(ch.rmsDbfs!);
      expect(ch.speechShare).toBeGreaterThan(0.1);
    }
    expect(report.stereo!.warnings).toEqual([]);
    expect(lastRecording(t).metadata.duration).toBe(report.output.duration);

    const out = await decodeStereo(receivedAudio(t), RATE);
    expect(Math.abs(speechSpan(out.right, RATE).start - (offsetMs / 1000 + customer.start))).toBeLessThanOrEqual(0.02);
    expect(energy(out, offsetMs / 1000 + customer.start, offsetMs / 1000 + customer.end).left).toBeLessThan(QUIET_RMS);
  });

  it('one silent side is reported and logged, and still delivered', async () => {
    const res = await fetch(`${t.url}/v1/recordings`, {
      method: 'POST',
      body: await callForm(file('agent.wav'), file('silence.wav')),
    });
    const report = (await res.json()) as Report;
    expect(res.status).toBe(201);
    expect(report.stereo!.analysis!.silentChannels).toEqual(['right']);
    expect(report.stereo!.check).toEqual({ policy: 'warn', action: 'warned' });
    const id = res.headers.get('x-request-id')!;
    const warning = t.logs.find((l) => l.includes(id) && l.includes('stereo check'));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning!)).toMatchObject({
      level: 40,
      warnings: [expect.stringMatching(/right channel \(remote party\) is silent/)],
    });
  });
});

describe('one stereo file', () => {
  it('twilio-dual (a form field) on an incoming call: the customer moves to the right', async () => {
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await callForm(
        file('twilio.opus'),
        undefined,
        { sourceProfile: 'twilio-dual' },
        { ...SAMPLE_METADATA, direction: 1 },
      ),
    });
    expect(res.status).toBe(201);
    const out = await decodeStereo(receivedAudio(t), RATE);
    expect(energy(out, customer.start, customer.end).right).toBeGreaterThan(SPEECH_RMS);
    expect(energy(out, customer.start, customer.end).left).toBeLessThan(QUIET_RMS);
    const agentAt = customer.end + 0.3;
    expect(energy(out, agentAt + agent.start, agentAt + agent.end).left).toBeGreaterThan(SPEECH_RMS);
  });

  it('the same file without a profile keeps its order', async () => {
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await callForm(file('twilio.opus')),
    });
    expect(res.status).toBe(201);
    const out = await decodeStereo(receivedAudio(t), RATE);
    expect(energy(out, customer.start, customer.end).left).toBeGreaterThan(SPEECH_RMS);
  });

  it('fake stereo is collapsed to mono under STEREO_CHECK=collapse; the duration is exact', async () => {
    const res = await fetch(`${collapsing.url}/v1/recordings`, {
      method: 'POST',
      body: await callForm(file('fake.wav')),
    });
    const report = (await res.json()) as Report;
    expect(res.status, JSON.stringify(report)).toBe(201);
    expect(report.stereo!.analysis!.fakeStereo).toBe(true);
    expect(report.stereo!.check).toEqual({ policy: 'collapse', action: 'collapsed-to-mono' });
    expect(report.output.channels).toBe(1);
    const rec = lastRecording(collapsing);
    expect(rec.format.channels).toBe(1);
    expect(rec.metadata.duration).toBe(report.output.duration);
    const [mono] = await decodeFloat(receivedAudio(collapsing), 1);
    expect(mono!.length).toBe(report.output.samples);
  });

  it('fake stereo is only warned about by default', async () => {
    const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: await callForm(file('fake.wav')) });
    const report = (await res.json()) as Report;
    expect(report.output.channels).toBe(2);
    expect(report.stereo!.check.action).toBe('warned');
    expect(report.stereo!.warnings.join()).toMatch(/fake stereo/);
  });
});

describe('refusals (nothing forwarded)', () => {
  it.each<[string, Record<string, string>, string, RegExp]>([
    [
      'bad options, all listed',
      { channelOrder: 'sideways', localOffsetMs: 'soon' },
      '',
      /channelOrder.*localOffsetMs|localOffsetMs.*channelOrder/,
    ],
    ['form and query disagree', { channelOrder: 'local-left' }, '?channelOrder=local-right', /in the form but/],
    ['offsets need two legs', { remoteOffsetMs: '500' }, '', /remoteAttachment/],
  ])('%s → 400 reason 0', async (_name, fields, query, message) => {
    const before = t.emulator.stats.snapshot().requests;
    const res = await fetch(`${t.url}${RECORDINGS_PATH}${query}`, {
      method: 'POST',
      body: await callForm(file('agent.wav'), undefined, fields),
    });
    const body = (await res.json()) as { reason: number; message: string };
    expect(res.status).toBe(400);
    expect(body.reason).toBe(0);
    expect(body.message).toMatch(message);
    expect(t.emulator.stats.snapshot().requests).toBe(before);
  });

  it('a broken remote leg → 400 reason 2 naming remoteAttachment', async () => {
    const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await callForm(
        file('agent.wav'),
        fileURLToPath(new URL('../fixtures/generated/not-audio.txt', import.meta.url)),
      ),
    });
    const body = (await res.json()) as { reason: number; message: string };
    expect(res.status).toBe(400);
    expect(body).toMatchObject({
      reason: 2,
      message: expect.stringMatching(/^remoteAttachment: /) as unknown as string,
    });
  });

  it('leaves no temp files behind', async () => {
    expect(await t.tempEntries()).toEqual([]);
    expect(await collapsing.tempEntries()).toEqual([]);
  });
});
