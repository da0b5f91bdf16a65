/**
 * Files made by tools other than ffmpeg (issue 10), one per class, made by
 * test/fixtures/make-real-world.sh. Each output is probed, and its length is
 * compared with an independent decoder: sox, libsndfile or speexdec.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareAudio } from '../../src/pipeline/prepare.js';
import type { PrepareDeps, PreparedAudio } from '../../src/pipeline/prepared.js';
import { prepareCall } from '../../src/pipeline/prepare-call.js';
import type { StereoPolicy } from '../../src/pipeline/stereo-policy.js';
import { resolveBinaries } from '../../src/media/ffmpeg-tools.js';
import { readWavInfo } from '../../src/media/wav.js';
import { readMp3Info } from '../../src/media/mp3.js';
import { GatewayError } from '../../src/errors.js';
import { decodeFloat, ffprobeFile } from '../helpers/audio.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../fixtures/make-real-world.sh', import.meta.url));
const TOOLS = ['sox', 'soxi', 'sndfile-convert', 'sndfile-info', 'speexenc', 'speexdec', 'python3'];

async function missingTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of TOOLS) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => missing.push(tool));
  }
  return missing;
}
const missing = await missingTools();
if (missing.length > 0 && process.env.CI) throw new Error(`CI must install ${missing.join(', ')} (see .ci/run)`);
const describeTools = missing.length === 0 ? describe : describe.skip;
if (missing.length > 0) {
  console.warn(`real-world.test.ts skipped: ${missing.join(', ')} not on PATH (see .ci/run)`);
}

let root = '';
let fixtures = '';
beforeAll(async () => {
  if (missing.length > 0) return;
  root = await mkdtemp(path.join(os.tmpdir(), 'real-world-'));
  fixtures = path.join(root, 'fixtures');
  await run('bash', [SCRIPT, fixtures]);
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const deps: PrepareDeps = {
  bins: resolveBinaries({}),
  output: { format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 },
  limits: { maxDurationSeconds: 3600, maxChannelsIn: 16, processTimeoutMs: 60_000 },
  voxSampleRate: 6000,
};

const STEREO: StereoPolicy = { channelOrder: 'local-left', sourceProfile: 'generic', check: 'warn' };

let jobs = 0;
async function prepare(name: string, extra: Partial<PrepareDeps> = {}): Promise<PreparedAudio> {
  const workDir = path.join(root, `job-${(jobs += 1)}`);
  await mkdir(workDir);
  const input = path.join(workDir, 'in');
  await copyFile(path.join(fixtures, name), input);
  const audio = { path: input, originalName: name, extension: path.extname(name).slice(1) };
  return prepareAudio(audio, workDir, { ...deps, ...extra });
}

/** Frames of a WAV decoded by sox or libsndfile, counted by soxi. */
async function framesOf(decodedWav: string): Promise<number> {
  const { stdout } = await run('soxi', ['-s', decodedWav]);
  return Number(stdout.trim());
}

async function soxDecode(args: string[]): Promise<string> {
  const out = path.join(root, `sox-${(jobs += 1)}.wav`);
  await run('sox', [...args, '-e', 'signed', '-b', '16', out]);
  return out;
}

async function sndfileDecode(input: string): Promise<string> {
  const out = path.join(root, `sndfile-${(jobs += 1)}.wav`);
  await run('sndfile-convert', ['-pcm16', input, out]);
  return out;
}

/** libsndfile's reading of the fact chunk: an independent parse of the header. */
async function sndfileFact(input: string): Promise<number> {
  const { stdout } = await run('sndfile-info', [input]);
  const match = /fact\s*:\s*4\s+frames\s*:\s*(\d+)/.exec(stdout);
  if (!match) throw new Error(`no fact chunk in sndfile-info's output:\n${stdout}`);
  return Number(match[1]);
}

async function pcm16(file: string): Promise<Int16Array> {
  const info = (await readWavInfo(file))!;
  const bytes = (await readFile(file)).subarray(info.dataOffset, info.dataOffset + info.dataBytes);
  return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Time of the first sample louder than half of full scale / 4. */
function onsetSeconds(samples: Float32Array, rate: number): number {
  const at = samples.findIndex((v) => Math.abs(v) > 0.125);
  return at / rate;
}

describeTools('Dialogic VOX (headerless OKI ADPCM)', () => {
  it('8 kHz: the same samples as sox decodes, duration bytes × 2 / rate', async () => {
    const prepared = await prepare('vox-8k.vox', { voxSampleRate: 8000 });
    expect(prepared.plan.action).toBe('transcode');
    expect(prepared.plan.reasons[0]).toContain('Dialogic VOX');
    const bytes = (await stat(path.join(fixtures, 'vox-8k.vox'))).size;
    expect(prepared.samples).toBe(bytes * 2);
    expect(prepared.durationSeconds).toBe((bytes * 2) / 8000);
    const sox = await soxDecode(['-t', 'vox', '-r', '8000', path.join(fixtures, 'vox-8k.vox')]);
    expect(await framesOf(sox)).toBe(prepared.samples);
    // Same step table and scaling as sox: every sample equal.
    const ours = await pcm16(prepared.path);
    const theirs = await pcm16(sox);
    expect(ours.length).toBe(theirs.length);
    let maxDifference = 0;
    for (let i = 0; i < ours.length; i++) maxDifference = Math.max(maxDifference, Math.abs(ours[i]! - theirs[i]!));
    expect(maxDifference).toBe(0);
  });

  it('6 kHz (VOX_SAMPLE_RATE default): resampled to 8 kHz, within one output sample of sox', async () => {
    const prepared = await prepare('vox-6k.vox');
    const bytes = (await stat(path.join(fixtures, 'vox-6k.vox'))).size;
    const sox = await soxDecode(['-t', 'vox', '-r', '6000', path.join(fixtures, 'vox-6k.vox')]);
    expect(await framesOf(sox)).toBe(bytes * 2);
    const probed = await ffprobeFile(prepared.path);
    expect(probed).toMatchObject({ codec: 'pcm_s16le', sampleRate: 8000, channels: 1 });
    expect(Math.abs(prepared.durationSeconds - (bytes * 2) / 6000)).toBeLessThanOrEqual(1 / 8000);
    // Levels agree with sox's decoding (the step table variant matters: a wrong one is several dB off).
    const [ours] = await decodeFloat(prepared.path, 1);
    const [theirs] = await decodeFloat(sox, 1);
    const level = (s: Float32Array) => Math.sqrt(s.reduce((sum, v) => sum + v * v, 0) / s.length);
    expect(Math.abs(20 * Math.log10(level(ours!) / level(theirs!)))).toBeLessThan(0.2);
  });
});

describeTools('lossless header rewrites', () => {
  it.each([
    ['ext-pcm16-16k-stereo.wav', 1, 16000, 2],
    ['ext-pcm8.wav', 1, 8000, 1],
    ['ext-alaw.wav', 6, 8000, 1],
    ['ext-mulaw.wav', 7, 8000, 1],
  ] as const)('%s: plain tag %i, rate and samples untouched', async (name, tag, rate, channels) => {
    const input = path.join(fixtures, name);
    const prepared = await prepare(name);
    expect(prepared.plan.action).toBe('repair-header');
    expect(prepared.plan.reasons[0]).toContain('WAVE_FORMAT_EXTENSIBLE');
    const out = (await readWavInfo(prepared.path))!;
    expect(out).toMatchObject({ formatTag: tag, sampleRate: rate, channels, sizesConsistent: true });
    expect(out.headerProblems).toEqual([]);
    if (tag !== 1) expect(out.factSamples).toBe(out.frames);
    const source = (await readWavInfo(input))!;
    const sourceBytes = (await readFile(input)).subarray(source.dataOffset, source.dataOffset + source.dataBytes);
    const outBytes = (await readFile(prepared.path)).subarray(out.dataOffset, out.dataOffset + out.dataBytes);
    expect(outBytes.equals(sourceBytes)).toBe(true);
    expect(prepared.samples).toBe(await framesOf(await soxDecode([input])));
  });

  it('a repaired streaming u-law WAV gets a fact chunk that agrees with its data', async () => {
    const input = path.join(fixtures, 'mulaw-streaming-fact.wav');
    expect((await readWavInfo(input))!.factSamples).toBe(0xffffffff);
    const prepared = await prepare('mulaw-streaming-fact.wav');
    expect(prepared.plan.action).toBe('repair-header');
    const out = (await readWavInfo(prepared.path))!;
    expect(out.factSamples).toBe(out.frames);
    expect(await sndfileFact(prepared.path)).toBe(prepared.samples);
    expect(prepared.samples).toBe(await framesOf(await soxDecode([input])));
  });

  it.each(['pcm16-block-align-4.wav', 'pcm16-byte-rate-wrong.wav'])('%s: header fixed, samples kept', async (name) => {
    const prepared = await prepare(name);
    expect(prepared.plan.action).toBe('repair-header');
    const out = (await readWavInfo(prepared.path))!;
    expect(out.headerProblems).toEqual([]);
    expect(out).toMatchObject({ blockAlign: 2, byteRate: 16000 });
    expect(prepared.samples).toBe(await framesOf(await soxDecode([path.join(fixtures, name)])));
  });

  it('a WAV whose rate is 0xFFFFFFFF is refused with a clear 400', async () => {
    const error = await prepare('pcm16-rate-ffffffff.wav').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).status).toBe(400);
    expect((error as GatewayError).message).toMatch(/sample rate \(4294967295 Hz\)/);
  });
});

describeTools('exact lengths: ADPCM and GSM in WAV trimmed to a plausible fact chunk', () => {
  it.each([
    ['ima-adpcm.wav', '0x0011 (IMA ADPCM'],
    ['ms-adpcm.wav', '0x0002 (MS ADPCM'],
    ['gsm.wav', '0x0031 (GSM 6.10'],
  ])('%s', async (name, tagText) => {
    const input = path.join(fixtures, name);
    const prepared = await prepare(name);
    expect(prepared.plan.action).toBe('transcode');
    expect(prepared.plan.reasons[0]).toContain(`WAV format tag ${tagText}`);
    expect(prepared.plan.reasons.join(' ')).not.toContain('EXTENSIBLE');
    const fact = await sndfileFact(input);
    expect(prepared.samples).toBe(fact);
    // libsndfile decodes whole blocks: padding included, so it is longer, by less than a block.
    const decoded = await framesOf(await sndfileDecode(input));
    expect(decoded).toBeGreaterThan(fact);
    expect(decoded - fact).toBeLessThan(505);
  });

  it('two legs (GSM and IMA ADPCM, as PBXes write them) merged: each trimmed to its fact', async () => {
    const workDir = path.join(root, `job-${(jobs += 1)}`);
    await mkdir(workDir);
    const leg = async (name: string) => {
      const file = path.join(workDir, name);
      await copyFile(path.join(fixtures, name), file);
      return { path: file, originalName: name, extension: 'wav' };
    };
    const prepared = await prepareCall(
      { attachment: await leg('gsm.wav'), remoteAttachment: await leg('ima-adpcm.wav') },
      workDir,
      { ...deps, stereo: STEREO },
    );
    // Both legs hold 1.2345 s at 8 kHz; undecoded padding would make the call 10,100 samples (IMA's last block).
    expect(await sndfileFact(path.join(fixtures, 'gsm.wav'))).toBe(9876);
    expect(prepared.samples).toBe(9876);
    expect(prepared.plan.reasons.join(' ')).toMatch(/local party's leg: fact chunk: 9876 samples/);
    expect(prepared.plan.reasons.join(' ')).toMatch(/remote party's leg: fact chunk: 9876 samples/);
  });

  it('stereo IMA ADPCM with its channels swapped: trimmed to its fact like a plain transcode', async () => {
    const name = 'ima-adpcm-stereo.wav';
    const fact = await sndfileFact(path.join(fixtures, name));
    expect(fact).toBe(17_600);
    const workDir = path.join(root, `job-${(jobs += 1)}`);
    await mkdir(workDir);
    const file = path.join(workDir, name);
    await copyFile(path.join(fixtures, name), file);
    const swapped = await prepareCall({ attachment: { path: file, originalName: name, extension: 'wav' } }, workDir, {
      ...deps,
      stereo: { ...STEREO, channelOrder: 'local-right' },
    });
    expect(swapped.stereo?.mapping.order).toBe('local-right');
    // 16 kHz in, 8 kHz out: exactly half of the fact's samples.
    expect(swapped.samples).toBe(fact / 2);
    expect(swapped.plan.reasons.join(' ')).toMatch(/fact chunk: 17600 samples/);
    expect((await prepare(name)).samples).toBe(fact / 2);
  });

  it("libsndfile's stereo IMA ADPCM: its contradicting fact chunk is ignored", async () => {
    const input = path.join(fixtures, 'ima-adpcm-stereo-sndfile.wav');
    const prepared = await prepare('ima-adpcm-stereo-sndfile.wav');
    expect(prepared.plan.reasons.join(' ')).toMatch(/contradicts the data.*ignored/);
    expect(prepared.format.channels).toBe(2);
    const decoded = await framesOf(await sndfileDecode(input));
    expect(await sndfileFact(input)).toBeLessThan(decoded / 2 + 1);
    // 16 kHz in, 8 kHz out: half of libsndfile's frames.
    expect(Math.abs(prepared.samples - decoded / 2)).toBeLessThanOrEqual(1);
  });
});

describeTools('exact lengths: Speex', () => {
  it('wideband: the lookahead removed and the end trimmed, exactly like speexdec', async () => {
    const input = path.join(fixtures, 'speex-wb.spx');
    const prepared = await prepare('speex-wb.spx', { output: { ...deps.output, sampleRate: 16000 } });
    expect(prepared.plan.reasons.join(' ')).toMatch(/223-sample lookahead removed/);
    const out = path.join(root, 'speexdec-wb.wav');
    await run('speexdec', ['--quiet', input, out]);
    expect(prepared.samples).toBe(await framesOf(out));
    // The tone starts 0.3345 s in: speech is not late.
    const [ours] = await decodeFloat(prepared.path, 1);
    expect(Math.abs(onsetSeconds(ours!, 16000) - 0.3345)).toBeLessThan(0.001);
  });

  it('narrowband: the granule position (the encoded length) exactly, speech not delayed', async () => {
    const input = path.join(fixtures, 'speex-nb.spx');
    const prepared = await prepare('speex-nb.spx');
    expect(prepared.plan.reasons.join(' ')).toMatch(/80-sample lookahead removed/);
    // sox made 1.2345 s at 8 kHz; speexdec 1.2.1 keeps 40 samples of lookahead at narrowband.
    expect(prepared.samples).toBe(9876);
    const out = path.join(root, 'speexdec-nb.wav');
    await run('speexdec', ['--quiet', input, out]);
    expect(Math.abs((await framesOf(out)) - prepared.samples)).toBeLessThanOrEqual(80);
    // The tone starts at 0 s; the raw decode starts 10 ms late.
    const [ours] = await decodeFloat(prepared.path, 1);
    expect(onsetSeconds(ours!, 8000)).toBeLessThan(0.002);
  });
});

describeTools('content before extension, and a bounded ID3 chain', () => {
  it('an MP3 named .ul is an MP3, not u-law noise', async () => {
    const prepared = await prepare('mp3-named.ul');
    expect(prepared.container).toBe('mp3');
    expect(prepared.plan.action).toBe('pass-through');
    const decoded = await ffprobeFile(prepared.path);
    expect(decoded.codec).toBe('mp3');
    expect(prepared.durationSeconds).toBeGreaterThan(1.2);
  });

  it('20,000 empty ID3 tags before an MP3 are removed, the frames kept', async () => {
    const input = path.join(fixtures, 'mp3-id3-flood.mp3');
    const prepared = await prepare('mp3-id3-flood.mp3');
    expect(prepared.plan.action).toBe('repair-header');
    expect(prepared.plan.reasons[0]).toMatch(/20000 ID3v2 tags/);
    const out = (await readMp3Info(prepared.path))!;
    expect(out.id3v2Tags).toBe(0);
    const original = (await readMp3Info(input))!;
    expect(out.frames).toBe(original.frames);
    expect((await stat(prepared.path)).size).toBe((await stat(input)).size - 200_000);
    // ffmpeg cannot open the original; it decodes the repaired file to the declared length.
    const [decoded] = await decodeFloat(prepared.path, 1);
    expect(Math.abs(decoded!.length / 8000 - prepared.durationSeconds)).toBeLessThan(0.08);
  });
});
