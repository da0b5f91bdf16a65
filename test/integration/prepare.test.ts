/**
 * prepareAudio() with real ffmpeg: every input family, every output format.
 * Outputs are checked by probing them (codec, channels, rate, duration), and
 * the measured duration is checked against what ffmpeg decodes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AUDIO_FIXTURES, NON_AUDIO_FIXTURES, fixture } from '../helpers/fixtures.js';
import { decodeFloat, ffprobeFile } from '../helpers/audio.js';
import { prepareAudio } from '../../src/pipeline/prepare.js';
import type { PrepareDeps } from '../../src/pipeline/prepared.js';
import { resolveBinaries } from '../../src/media/ffmpeg-tools.js';
import { extensionOf } from '../../src/media/formats.js';
import { readWavInfo } from '../../src/media/wav.js';
import { GatewayError } from '../../src/errors.js';
import type { OutputFormat } from '../../src/media/output.js';

const bins = resolveBinaries({});
const depsFor = (format: OutputFormat, channels: 'keep' | 'mono' | 'stereo' = 'keep'): PrepareDeps => ({
  bins,
  output: { format, sampleRate: 8000, channels, mp3BitrateKbps: 32 },
  limits: { maxDurationSeconds: 43_200, maxChannelsIn: 16, processTimeoutMs: 60_000 },
});

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'prepare-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Copies a fixture into its own work folder, as the intake would have. */
async function stage(name: string): Promise<{ input: string; workDir: string }> {
  const workDir = await mkdtemp(path.join(root, 'job-'));
  const input = path.join(workDir, 'in-attachment');
  await cp(fixture(name), input);
  return { input, workDir };
}

const EXPECTED_CODEC: Record<OutputFormat, string> = {
  pcm16: 'pcm_s16le',
  pcm8: 'pcm_u8',
  alaw: 'pcm_alaw',
  mulaw: 'pcm_mulaw',
  mp3: 'mp3',
};

describe('every input family to the default target (PCM16 8 kHz, channels kept)', () => {
  it.each(AUDIO_FIXTURES.map((f) => [f.name, f] as const))('%s', async (name, f) => {
    const { input, workDir } = await stage(name);
    const prepared = await prepareAudio(
      { path: input, originalName: name, extension: extensionOf(name) },
      workDir,
      depsFor('pcm16'),
    );
    const probed = await ffprobeFile(prepared.path);
    const channels = f.channels > 2 ? 2 : f.channels;
    expect(probed.channels).toBe(channels);
    if (prepared.plan.action === 'transcode') {
      expect(probed.codec).toBe('pcm_s16le');
      expect(probed.sampleRate).toBe(8000);
      const wav = (await readWavInfo(prepared.path))!;
      expect(wav.formatTag).toBe(1);
      expect(wav.sizesConsistent).toBe(true);
      expect(prepared.samples).toBe(wav.frames);
    } else {
      // Repairs and header rewrites (a WAVE_FORMAT_EXTENSIBLE header around PCM16) keep the input's rate.
      expect(f.compliant || f.family === 'wav-streaming' || prepared.plan.action === 'repair-header').toBe(true);
      if (prepared.plan.action === 'repair-header') expect(probed.sampleRate).toBe(f.sampleRate);
    }
    // Exact: the measured duration is the decoded length, to the sample.
    const decoded = await decodeFloat(prepared.path, channels);
    expect(prepared.durationSeconds).toBeCloseTo(
      decoded[0]!.length / probed.sampleRate,
      prepared.container === 'mp3' ? 2 : 6,
    );
    expect(prepared.filename).toBe(`${path.parse(name).name}.${prepared.container}`);
  });
});

describe('every output format', () => {
  it.each<OutputFormat>(['pcm16', 'pcm8', 'alaw', 'mulaw', 'mp3'])('%s from stereo Opus', async (format) => {
    const { input, workDir } = await stage('opus-stereo.opus');
    const prepared = await prepareAudio(
      { path: input, originalName: 'a.opus', extension: 'opus' },
      workDir,
      depsFor(format),
    );
    const probed = await ffprobeFile(prepared.path);
    expect(probed.codec).toBe(EXPECTED_CODEC[format]);
    expect(probed.channels).toBe(2);
    expect(prepared.contentType).toBe(format === 'mp3' ? 'audio/mpeg' : 'audio/wave');
    const decoded = await decodeFloat(prepared.path, 2);
    // MP3: the measure removes the encoder delay and padding that ffmpeg's decoder also removes.
    expect(Math.abs(prepared.durationSeconds - decoded[0]!.length / probed.sampleRate)).toBeLessThan(
      format === 'mp3' ? 0.002 : 1e-9,
    );
  });
});

describe('channels policy', () => {
  it('CHANNELS=mono downmixes stereo; CHANNELS=stereo duplicates mono', async () => {
    const a = await stage('pcm16-stereo.wav');
    const mono = await prepareAudio(
      { path: a.input, originalName: 'a.wav', extension: 'wav' },
      a.workDir,
      depsFor('pcm16', 'mono'),
    );
    expect((await ffprobeFile(mono.path)).channels).toBe(1);
    const b = await stage('pcm16-mono.wav');
    const stereo = await prepareAudio(
      { path: b.input, originalName: 'b.wav', extension: 'wav' },
      b.workDir,
      depsFor('pcm16', 'stereo'),
    );
    expect((await ffprobeFile(stereo.path)).channels).toBe(2);
  });
});

describe('pass-through and repair', () => {
  it('forwards a compliant WAV byte for byte', async () => {
    const { input, workDir } = await stage('alaw-mono.wav');
    const prepared = await prepareAudio(
      { path: input, originalName: 'a.wav', extension: 'wav' },
      workDir,
      depsFor('mp3'),
    );
    expect(prepared.plan.action).toBe('pass-through');
    expect((await readFile(prepared.path)).equals(await readFile(fixture('alaw-mono.wav')))).toBe(true);
  });

  it.each(['pcm16-size-zero.wav', 'pcm16-size-ffff.wav'])(
    'repairs the header of %s without touching the samples',
    async (name) => {
      const { input, workDir } = await stage(name);
      const original = await readFile(input);
      const prepared = await prepareAudio(
        { path: input, originalName: name, extension: 'wav' },
        workDir,
        depsFor('pcm16'),
      );
      expect(prepared.plan.action).toBe('repair-header');
      const repaired = await readFile(prepared.path);
      const info = (await readWavInfo(prepared.path))!;
      expect(info.sizesConsistent).toBe(true);
      expect(repaired.subarray(info.dataOffset).equals(original.subarray(info.dataOffset))).toBe(true);
      expect(prepared.samples).toBe(16000);
    },
  );
});

describe('refusals', () => {
  it.each(NON_AUDIO_FIXTURES.map((f) => f.name))('%s → reason 2', async (name) => {
    const { input, workDir } = await stage(name);
    const error = await prepareAudio(
      { path: input, originalName: name, extension: extensionOf(name) },
      workDir,
      depsFor('pcm16'),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).reason).toBe(2);
    expect((error as GatewayError).status).toBe(400);
  });

  it('refuses a recording longer than the limit from its header, within seconds', async () => {
    const { input, workDir } = await stage('flac.flac');
    const deps = depsFor('pcm16');
    const error = await prepareAudio({ path: input, originalName: 'a.flac', extension: 'flac' }, workDir, {
      ...deps,
      limits: { ...deps.limits, maxDurationSeconds: 1 },
    }).catch((e: unknown) => e);
    expect((error as GatewayError).reason).toBe(2);
    expect((error as GatewayError).message).toMatch(/limit of 1 seconds/);
  });
});
