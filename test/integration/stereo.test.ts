/**
 * Stereo preparation with real ffmpeg, on speech legs made by espeak-ng in
 * different codecs. Energy per channel in time windows proves who ends up
 * where: merge order, swaps, alignment, padding, fake stereo, silent sides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveBinaries } from '../../src/media/ffmpeg-tools.js';
import { readWavInfo } from '../../src/media/wav.js';
import { GatewayError } from '../../src/errors.js';
import { prepareCall } from '../../src/pipeline/prepare-call.js';
import type { CallDeps, StereoPolicy, StereoRequestOptions } from '../../src/pipeline/stereo-policy.js';
import type { Direction } from '../../src/media/channels.js';
import type { OutputFormat } from '../../src/media/output.js';
import { ffprobeFile } from '../helpers/audio.js';
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

const bins = resolveBinaries({});
const RATE = 8000;

function depsFor(
  stereo: Partial<StereoPolicy> = {},
  format: OutputFormat = 'pcm16',
  channels: 'keep' | 'mono' = 'keep',
): CallDeps {
  return {
    bins,
    output: { format, sampleRate: RATE, channels, mp3BitrateKbps: 32 },
    limits: { maxDurationSeconds: 43_200, maxChannelsIn: 16, processTimeoutMs: 60_000 },
    stereo: { channelOrder: 'local-left', sourceProfile: 'generic', check: 'warn', ...stereo },
  };
}

let root: string;
/** Speech spans (seconds) of the agent's and the customer's sentence, each in its own file. */
let agent: Span;
let customer: Span;
const file = (name: string) => path.join(root, name);

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'stereo-'));
  await say('Hello, this is Anna from the help desk.', 'en-us', file('agent.22k.wav'));
  await say('Hi. My router keeps dropping the line.', 'en-gb+f3', file('customer.22k.wav'));
  await Promise.all([
    // The local party's leg: compliant WAV, 8 kHz PCM16.
    ff('-i', file('agent.22k.wav'), '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', file('agent.wav')),
    // The remote party's leg: Opus in Ogg at 16 kHz, and raw GSM 06.10.
    ff('-i', file('customer.22k.wav'), '-ar', '16000', '-c:a', 'libopus', '-b:a', '24k', file('customer.opus')),
    ff('-i', file('customer.22k.wav'), '-ar', '8000', '-ac', '1', '-c:a', 'libgsm', '-f', 'gsm', file('customer.gsm')),
    ff('-i', file('customer.22k.wav'), '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', file('customer.wav')),
    ff('-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '2.5', '-c:a', 'libopus', file('silence.opus')),
  ]);
  [agent, customer] = await Promise.all([spanOf(file('agent.wav'), RATE), spanOf(file('customer.wav'), RATE)]);
  const gap = Math.ceil((agent.end + 0.3) * 1000);
  await Promise.all([
    // A Twilio-like dual-channel WAV: the caller (customer, remote) first, then the agent; they take turns.
    ff(
      '-i',
      file('customer.wav'),
      '-i',
      file('agent.wav'),
      '-filter_complex',
      `[0:a]aformat=channel_layouts=mono,apad=pad_dur=4[c];[1:a]aformat=channel_layouts=mono,adelay=${Math.ceil((customer.end + 0.3) * 1000)}:all=1,apad=pad_dur=1[a];[c][a]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR,atrim=end=${(customer.end + agent.end + 1).toFixed(2)}[out]`,
      '-map',
      '[out]',
      '-c:a',
      'pcm_s16le',
      file('twilio.wav'),
    ),
    // Four channels: a 1 kHz tone, silence, the agent, then the customer after the agent.
    ff(
      '-i',
      file('agent.wav'),
      '-i',
      file('customer.wav'),
      '-f',
      'lavfi',
      '-i',
      'sine=f=1000:r=8000:d=6',
      '-f',
      'lavfi',
      '-i',
      'anullsrc=r=8000:cl=mono:d=6',
      '-filter_complex',
      `[0:a]aformat=channel_layouts=mono,apad=whole_dur=6[a];[1:a]aformat=channel_layouts=mono,adelay=${gap}:all=1,apad=whole_dur=6[c];[2:a][3:a][a][c]join=inputs=4:channel_layout=4.0:map=0.0-FL|1.0-FR|2.0-FC|3.0-BC[out]`,
      '-map',
      '[out]',
      '-t',
      '6',
      '-c:a',
      'pcm_s16le',
      file('four.wav'),
    ),
    // Fake stereo: one mixed conversation copied on both channels (as some recorders do).
    ff(
      '-i',
      file('agent.wav'),
      '-i',
      file('customer.wav'),
      '-filter_complex',
      `[1:a]adelay=${gap}:all=1[c];[0:a][c]amix=inputs=2:duration=longest:normalize=0,pan=stereo|c0=c0|c1=c0[out]`,
      '-map',
      '[out]',
      '-c:a',
      'pcm_s16le',
      file('fake.wav'),
    ),
  ]);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let jobs = 0;
/** Copies inputs into a fresh job folder (the intake's names), and prepares them. */
async function prepare(
  parts: { attachment: string; remoteAttachment?: string },
  options: StereoRequestOptions = {},
  deps: CallDeps = depsFor(),
  direction?: Direction,
) {
  const workDir = path.join(root, `job-${++jobs}`);
  const stage = async (name: string, source: string) => {
    const target = path.join(workDir, `in-${name}`);
    await cp(source, target);
    return { path: target, originalName: path.basename(source), extension: path.extname(source).slice(1) };
  };
  const attachment = await stage('attachment', parts.attachment);
  const remoteAttachment = parts.remoteAttachment ? await stage('remoteAttachment', parts.remoteAttachment) : undefined;
  return prepareCall({ attachment, remoteAttachment, options, direction }, workDir, deps);
}

describe.concurrent('two legs', () => {
  it('merges them: local left, remote right, aligned by the offset, the shorter padded', async () => {
    const offsetMs = Math.ceil((agent.end + 0.5) * 1000);
    const p = await prepare(
      { attachment: file('agent.wav'), remoteAttachment: file('customer.opus') },
      { remoteOffsetMs: offsetMs },
    );
    expect(p.format).toMatchObject({ container: 'wav', codec: 'pcm_s16le', channels: 2, sampleRate: RATE });
    const out = await decodeStereo(p.path, RATE);

    // Merge order: the agent speaks on the left only, then the customer on the right only.
    const a = energy(out, agent.start, agent.end);
    expect(a.left).toBeGreaterThan(SPEECH_RMS);
    expect(a.right).toBeLessThan(QUIET_RMS);
    const offset = offsetMs / 1000;
    const c = energy(out, offset + customer.start, offset + customer.end);
    expect(c.right).toBeGreaterThan(SPEECH_RMS);
    expect(c.left).toBeLessThan(QUIET_RMS);

    // Alignment: the customer's speech starts exactly where the offset put it.
    expect(Math.abs(speechSpan(out.right, RATE).start - (offset + customer.start))).toBeLessThanOrEqual(0.02);

    // Padding: the output is as long as the later leg; the agent's side is digital silence after its leg.
    const legs = p.stereo!.legs!;
    const localSamples = Math.round(legs[0]!.durationSeconds * RATE);
    const remoteSamples = Math.round(legs[1]!.durationSeconds * RATE);
    expect(p.samples).toBe(Math.max(localSamples, Math.round(offset * RATE) + remoteSamples));
    expect(out.left.subarray(localSamples).every((x) => x === 0)).toBe(true);
    expect(out.left.length).toBe(p.samples);

    // Exact duration, measured from the output.
    const wav = (await readWavInfo(p.path))!;
    expect(wav.frames).toBe(p.samples);
    expect(p.durationSeconds).toBe(p.samples / RATE);
    expect(p.plan.reasons.join(' ')).toMatch(/local party's leg is padded/);

    // The report, per channel.
    expect(p.stereo).toMatchObject({
      source: 'two-legs',
      mapping: { order: 'local-left' },
      check: { action: 'none' },
      warnings: [],
    });
    const [left, right] = p.stereo!.analysis!.channels;
    expect(left).toMatchObject({ channel: 'left', party: 'local', silent: false });
    expect(right).toMatchObject({ channel: 'right', party: 'remote', silent: false });
    expect(left!.speechShare).toBeGreaterThan(0.15);
    expect(right!.speechShare).toBeGreaterThan(0.15);
    expect(p.stereo!.analysis!.fakeStereo).toBe(false);
  });

  it('channelOrder=local-right: the attachment is the remote party, so it goes right', async () => {
    const offsetMs = Math.ceil((customer.end + 0.4) * 1000);
    // The local party is now the remoteAttachment (the agent), starting after the customer.
    const p = await prepare(
      { attachment: file('customer.opus'), remoteAttachment: file('agent.wav') },
      { channelOrder: 'local-right', localOffsetMs: offsetMs },
    );
    const out = await decodeStereo(p.path, RATE);
    const c = energy(out, customer.start, customer.end);
    expect(c.right).toBeGreaterThan(SPEECH_RMS);
    expect(c.left).toBeLessThan(QUIET_RMS);
    const a = energy(out, offsetMs / 1000 + agent.start, offsetMs / 1000 + agent.end);
    expect(a.left).toBeGreaterThan(SPEECH_RMS);
    expect(a.right).toBeLessThan(QUIET_RMS);
    expect(p.stereo!.mapping.decidedBy).toMatch(/channelOrder=local-right in the request/);
  });

  it('a profile swaps the legs by direction (Asterisk r()/t() files of an incoming call)', async () => {
    // Incoming: MixMonitor ran on the caller's (customer's) channel, so r() = customer = attachment.
    const p = await prepare(
      { attachment: file('customer.gsm'), remoteAttachment: file('agent.wav') },
      { sourceProfile: 'asterisk-mixmonitor' },
      depsFor(),
      1,
    );
    const out = await decodeStereo(p.path, RATE);
    const a = energy(out, agent.start, agent.end);
    expect(a.left).toBeGreaterThan(SPEECH_RMS);
    expect(p.stereo!.legs!.map((l) => [l.part, l.party, l.codec])).toEqual([
      ['attachment', 'remote', 'gsm'],
      ['remoteAttachment', 'local', 'pcm_s16le'],
    ]);
  });

  it('MP3 output from a raw GSM leg: exact duration, analysed through a decode', async () => {
    const p = await prepare(
      { attachment: file('agent.wav'), remoteAttachment: file('customer.gsm') },
      { remoteOffsetMs: 3000 },
      depsFor({}, 'mp3'),
    );
    const probed = await ffprobeFile(p.path);
    expect(probed).toMatchObject({ codec: 'mp3', channels: 2, sampleRate: RATE });
    expect(p.durationSeconds).toBeCloseTo(p.stereo!.legs![1]!.durationSeconds + 3, 2);
    expect(p.stereo!.analysis!.channels.every((c) => !c.silent)).toBe(true);
  });

  it('CHANNELS=mono: both legs summed into one channel', async () => {
    const p = await prepare(
      { attachment: file('agent.wav'), remoteAttachment: file('customer.opus') },
      { remoteOffsetMs: 3000 },
      depsFor({}, 'pcm16', 'mono'),
    );
    expect(p.format.channels).toBe(1);
    expect(p.stereo!.analysis).toBeUndefined();
    expect(p.plan.reasons[0]).toMatch(/mixed to mono/);
  });

  it('one silent side: reported, per channel', async () => {
    const p = await prepare({ attachment: file('agent.wav'), remoteAttachment: file('silence.opus') });
    expect(p.format.channels).toBe(2);
    expect(p.stereo!.analysis!.silentChannels).toEqual(['right']);
    expect(p.stereo!.analysis!.channels[1]).toMatchObject({ silent: true, speechShare: 0 });
    expect(p.stereo!.check.action).toBe('warned');
    expect(p.stereo!.warnings.join()).toMatch(/right channel \(remote party\) is silent/);
  });

  it('an entirely silent recording', async () => {
    const p = await prepare({ attachment: file('silence.opus'), remoteAttachment: file('silence.opus') });
    expect(p.stereo!.analysis!.silentRecording).toBe(true);
    expect(p.stereo!.warnings.join()).toMatch(/silent on both channels/);
  });

  it('the same leg twice is fake stereo; STEREO_CHECK=collapse makes it mono, as long to the sample', async () => {
    const p = await prepare(
      { attachment: file('agent.wav'), remoteAttachment: file('agent.wav') },
      {},
      depsFor({ check: 'collapse' }),
    );
    expect(p.format.channels).toBe(1);
    expect(p.stereo!.analysis!.fakeStereo).toBe(true);
    expect(p.stereo!.check.action).toBe('collapsed-to-mono');
    expect(p.samples).toBe(Math.round(p.stereo!.legs![0]!.durationSeconds * RATE));
  });

  it('names the leg at fault', async () => {
    const notAudio = path.join(root, 'notes.txt');
    await writeFile(notAudio, 'hello, not audio\n');
    const error = await prepare({ attachment: file('agent.wav'), remoteAttachment: notAudio }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).reason).toBe(2);
    expect((error as GatewayError).message).toMatch(/^remoteAttachment: /);
  });
});

describe.concurrent('one stereo file', () => {
  it('generic: a compliant stereo WAV is still forwarded byte for byte, and analysed', async () => {
    const p = await prepare({ attachment: file('twilio.wav') });
    expect(p.plan.action).toBe('pass-through');
    expect((await readFile(p.path)).equals(await readFile(file('twilio.wav')))).toBe(true);
    expect(p.stereo!.analysis!.fakeStereo).toBe(false);
    expect(p.stereo!.rendered).toBe(false);
  });

  it('twilio-dual on an incoming call: the caller (remote) was left, so the channels are swapped', async () => {
    const p = await prepare({ attachment: file('twilio.wav') }, { sourceProfile: 'twilio-dual' }, depsFor(), 1);
    expect(p.plan.action).toBe('transcode');
    const out = await decodeStereo(p.path, RATE);
    // The customer spoke first, on channel 1 of the input: now on the right.
    const c = energy(out, customer.start, customer.end);
    expect(c.right).toBeGreaterThan(SPEECH_RMS);
    expect(c.left).toBeLessThan(QUIET_RMS);
    const agentAt = customer.end + 0.3;
    const a = energy(out, agentAt + agent.start, agentAt + agent.end);
    expect(a.left).toBeGreaterThan(SPEECH_RMS);
    expect(a.right).toBeLessThan(QUIET_RMS);
    expect(p.samples).toBe((await readWavInfo(file('twilio.wav')))!.frames);
    expect(p.stereo!.mapping).toMatchObject({
      order: 'local-right',
      left: 'local party ← input channel 2',
      right: 'remote party ← input channel 1',
    });
  });

  it('SOURCE_PROFILE=freeswitch on an outgoing call keeps the order', async () => {
    const p = await prepare({ attachment: file('twilio.wav') }, {}, depsFor({ sourceProfile: 'freeswitch' }), 2);
    expect(p.plan.action).toBe('pass-through');
    expect(p.stereo!.mapping.order).toBe('local-left');
  });

  it('channelOrder=local-right per request swaps, whatever the profile', async () => {
    const p = await prepare(
      { attachment: file('twilio.wav') },
      { channelOrder: 'local-right' },
      depsFor({ sourceProfile: 'freeswitch' }),
      2,
    );
    const out = await decodeStereo(p.path, RATE);
    expect(energy(out, customer.start, customer.end).right).toBeGreaterThan(SPEECH_RMS);
  });

  it('channels=3,4 picks the local and the remote party out of four channels', async () => {
    const p = await prepare({ attachment: file('four.wav') }, { channels: { local: 2, remote: 3 } });
    expect(p.format.channels).toBe(2);
    const out = await decodeStereo(p.path, RATE);
    const a = energy(out, agent.start, agent.end);
    expect(a.left).toBeGreaterThan(SPEECH_RMS);
    expect(a.right).toBeLessThan(QUIET_RMS);
    const gap = Math.ceil((agent.end + 0.3) * 1000) / 1000;
    const c = energy(out, gap + customer.start, gap + customer.end);
    expect(c.right).toBeGreaterThan(SPEECH_RMS);
    expect(c.left).toBeLessThan(QUIET_RMS);
    expect(p.samples).toBe(6 * RATE);
    expect(p.stereo!.source).toBe('selected-channels');
  });

  it('analyses A-law and u-law outputs from their codes like PCM (levels within 0.5 dB)', async () => {
    const levels = async (format: OutputFormat) => {
      const p = await prepare({ attachment: file('twilio.wav') }, { channelOrder: 'local-right' }, depsFor({}, format));
      expect(p.format.codec).toBe(format === 'pcm16' ? 'pcm_s16le' : `pcm_${format}`);
      return p.stereo!.analysis!.channels.map((c) => c.rmsDbfs!);
    };
    const [pcm, alaw, mulaw] = await Promise.all([levels('pcm16'), levels('alaw'), levels('mulaw')]);
    for (const other of [alaw, mulaw])
      for (const [i, db] of other.entries()) expect(Math.abs(db - pcm[i]!)).toBeLessThan(0.5);
  });

  it('refuses a selection the file does not have (reason 2)', async () => {
    const error = await prepare({ attachment: file('twilio.wav') }, { channels: { local: 2, remote: 3 } }).catch(
      (e: unknown) => e,
    );
    expect((error as GatewayError).reason).toBe(2);
    expect((error as GatewayError).message).toMatch(/channel 4, but the audio has 2 channels/);
  });

  it('fake stereo: warned by default', async () => {
    const p = await prepare({ attachment: file('fake.wav') });
    expect(p.format.channels).toBe(2);
    expect(p.stereo!.analysis!.fakeStereo).toBe(true);
    expect(p.stereo!.analysis!.correlation).toBeGreaterThan(0.98);
    expect(p.stereo!.check.action).toBe('warned');
    expect(p.stereo!.warnings.join()).toMatch(/fake stereo/);
  });

  it('fake stereo: collapsed to mono with STEREO_CHECK=collapse, the duration unchanged', async () => {
    const p = await prepare({ attachment: file('fake.wav') }, {}, depsFor({ check: 'collapse' }));
    expect(p.format.channels).toBe(1);
    expect(p.samples).toBe((await readWavInfo(file('fake.wav')))!.frames);
    expect(p.stereo!.check.action).toBe('collapsed-to-mono');
    expect(p.plan.reasons.join()).toMatch(/collapsed to mono/);
  });

  it('offsets without a second leg, or channels with two legs, are refused (reason 0)', async () => {
    const a = await prepare({ attachment: file('agent.wav') }, { remoteOffsetMs: 100 }).catch((e: unknown) => e);
    expect((a as GatewayError).reason).toBe(0);
    const b = await prepare(
      { attachment: file('agent.wav'), remoteAttachment: file('customer.opus') },
      { channels: { local: 0, remote: 1 } },
    ).catch((e: unknown) => e);
    expect((b as GatewayError).reason).toBe(0);
  });
});
