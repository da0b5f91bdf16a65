/**
 * Level normalization with real ffmpeg on espeak-ng speech at known levels
 * per side, checked with an independent meter (ffmpeg astats and ebur128,
 * test/helpers/meter.ts): both sides on target, DC gone, peaks under the
 * ceiling, a silent side still silent, the length unchanged to the sample,
 * the sides not swapped, a file already in range passed through untouched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveBinaries } from '../../src/media/ffmpeg-tools.js';
import { readWavInfo } from '../../src/media/wav.js';
import { readMp3Info } from '../../src/media/mp3.js';
import { prepareCall } from '../../src/pipeline/prepare-call.js';
import type { CallDeps, StereoRequestOptions } from '../../src/pipeline/stereo-policy.js';
import type { OutputFormat } from '../../src/media/output.js';
import type { LevelPolicy } from '../../src/media/level.js';
import { ffprobeFile } from '../helpers/audio.js';
import { meter } from '../helpers/meter.js';
import { decodeStereo, ff, say } from '../helpers/speech.js';

const bins = resolveBinaries({});
const RATE = 8000;
const TARGET = -20;
const CEILING = -1;
/** Length of the test calls: 8 s and a few odd samples, so that a change of one sample shows. */
const SAMPLES = 64_123;

function depsFor(
  level: Partial<LevelPolicy> = {},
  format: OutputFormat = 'pcm16',
  channels: 'keep' | 'mono' = 'keep',
): CallDeps {
  return {
    bins,
    output: { format, sampleRate: RATE, channels, mp3BitrateKbps: 32 },
    limits: { maxDurationSeconds: 43_200, maxChannelsIn: 16, processTimeoutMs: 60_000 },
    stereo: { channelOrder: 'local-left', sourceProfile: 'generic', check: 'warn' },
    level: { mode: 'speech', targetDbfs: TARGET, maxPeakDbfs: CEILING, maxGainDb: 30, ...level },
  };
}

let root: string;
const file = (name: string) => path.join(root, name);
/** The right side's speech level before its DC was added (the meter would count the DC as level). */
let rightLevel: number;

/** Scales a mono speech file so that the meter reads `db` for it. */
async function scaled(source: string, db: number, out: string): Promise<void> {
  const [m] = await meter(source, 1, RATE);
  await ff('-i', source, '-af', `volume=${(db - m!.speechDbfs!).toFixed(3)}dB`, '-c:a', 'pcm_s16le', out);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'level-'));
  await Promise.all([
    say('Hello, this is Anna from the help desk. How can I help you today?', 'en-us', file('agent.22k.wav')),
    say(
      'Hi. My router keeps dropping the line, every few minutes, since Monday.',
      'en-gb+f3',
      file('customer.22k.wav'),
    ),
  ]);
  await Promise.all([
    ff('-i', file('agent.22k.wav'), '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', file('agent.wav')),
    ff('-i', file('customer.22k.wav'), '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', file('customer.wav')),
  ]);
  await Promise.all([
    scaled(file('agent.wav'), -38, file('agent-38.wav')),
    scaled(file('customer.wav'), -14, file('customer-14.wav')),
    scaled(file('agent.wav'), -20.4, file('agent-20.wav')),
  ]);
  const pad = `apad=whole_len=${SAMPLES},atrim=end_sample=${SAMPLES}`;
  const click = 'aeval=val(0)+if(eq(n\\,56000)\\,0.25\\,0):c=same';
  const join = '[l][r]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR';
  // The customer at −14 dBFS would clip its peaks: a limiter in the fixture keeps them at −0.9 dBFS.
  await ff(
    '-i',
    file('customer-14.wav'),
    '-af',
    `adelay=4300:all=1,alimiter=limit=0.9:level=0:latency=1,${pad}`,
    '-c:a',
    'pcm_s16le',
    file('right.wav'),
  );
  rightLevel = (await meter(file('right.wav'), 1, RATE))[0]!.speechDbfs!;
  await Promise.all([
    // Left: the soft agent (−38 dBFS) with one click at 7 s; right: the loud customer after the agent, with +0.05 DC.
    ff(
      '-i',
      file('agent-38.wav'),
      '-i',
      file('right.wav'),
      '-filter_complex',
      `[0:a]${pad},${click}[l];[1:a]aeval=val(0)+0.05:c=same[r];${join}`,
      '-c:a',
      'pcm_s16le',
      file('call.wav'),
    ),
    // The soft agent on the left, digital silence on the right.
    ff(
      '-i',
      file('agent-38.wav'),
      '-f',
      'lavfi',
      '-i',
      `anullsrc=r=${RATE}:cl=mono`,
      '-filter_complex',
      `[0:a]${pad}[l];[1:a]atrim=end_sample=${SAMPLES}[r];[l][r]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR`,
      '-c:a',
      'pcm_s16le',
      file('one-sided.wav'),
    ),
    ff('-i', file('agent-38.wav'), '-af', pad, '-c:a', 'pcm_s16le', file('mono-38.wav')),
    // The same call as FLAC, which is transcoded to the output format first.
    ff(
      '-i',
      file('agent-38.wav'),
      '-i',
      file('right.wav'),
      '-filter_complex',
      `[0:a]${pad},${click}[l];[1:a]aeval=val(0)+0.05:c=same[r];${join}`,
      '-c:a',
      'flac',
      file('call.flac'),
    ),
    // Already normal: speech at −20.4 dBFS on both sides, no DC.
    ff(
      '-i',
      file('agent-20.wav'),
      '-af',
      `${pad},pan=stereo|c0=c0|c1=0.98*c0`,
      '-c:a',
      'pcm_s16le',
      file('normal.wav'),
    ),
  ]);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let jobs = 0;
async function prepare(source: string, options: StereoRequestOptions = {}, deps: CallDeps = depsFor()) {
  const workDir = path.join(root, `job-${++jobs}`);
  const target = path.join(workDir, 'in-attachment');
  await cp(source, target, { recursive: true });
  const extension = path.extname(source).slice(1);
  const prepared = await prepareCall(
    { attachment: { path: target, originalName: path.basename(source), extension }, options },
    workDir,
    deps,
  );
  return { prepared, input: target };
}

const sha = async (f: string) =>
  createHash('sha256')
    .update(await readFile(f))
    .digest('hex');

/** Pearson correlation of two equally long signals. */
function correlation(a: Float32Array, b: Float32Array): number {
  let sa = 0,
    sb = 0,
    saa = 0,
    sbb = 0,
    sab = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    sa += a[i]!;
    sb += b[i]!;
    saa += a[i]! * a[i]!;
    sbb += b[i]! * b[i]!;
    sab += a[i]! * b[i]!;
  }
  return (sab / n - (sa / n) * (sb / n)) / Math.sqrt((saa / n - (sa / n) ** 2) * (sbb / n - (sb / n) ** 2));
}

describe.concurrent('LEVEL=speech', () => {
  it('brings −38 dBFS and −14 dBFS (with DC) to −20: DC gone, peaks under the ceiling, nothing moved', async () => {
    const before = await meter(file('call.wav'), 2, RATE);
    expect(before[0]!.speechDbfs!).toBeCloseTo(-38, 0);
    expect(before[1]!.dcOffset).toBeCloseTo(0.05, 2);

    const { prepared: p } = await prepare(file('call.wav'));
    const after = await meter(p.path, 2, RATE);
    for (const side of after) {
      expect(Math.abs(side.speechDbfs! - TARGET)).toBeLessThanOrEqual(1);
      expect(Math.abs(side.dcOffset)).toBeLessThan(0.001);
      expect(side.peakDbfs).toBeLessThanOrEqual(CEILING);
      expect(side.truePeakDbfs).toBeLessThanOrEqual(CEILING);
    }

    // Nothing else changed: length to the sample, rate, codec, channels.
    const info = (await readWavInfo(p.path))!;
    expect(info.frames).toBe(SAMPLES);
    expect(p.samples).toBe(SAMPLES);
    expect(p.durationSeconds).toBe(SAMPLES / RATE);
    const probed = await ffprobeFile(p.path);
    expect(probed).toMatchObject({ codec: 'pcm_s16le', channels: 2, sampleRate: RATE });

    // Not swapped: each output side is its own input side, scaled.
    const [input, output] = await Promise.all([decodeStereo(file('call.wav'), RATE), decodeStereo(p.path, RATE)]);
    expect(correlation(input.left, output.left)).toBeGreaterThan(0.99);
    expect(correlation(input.right, output.right)).toBeGreaterThan(0.99);
    expect(Math.abs(correlation(input.left, output.right))).toBeLessThan(0.2);

    // The report: before and after per side, the gain, the limiter on the clicking side only.
    const level = p.level!;
    expect(level).toMatchObject({ mode: 'speech', action: 'normalized', rendered: true, warnings: [] });
    const [left, right] = level.channels;
    expect(left).toMatchObject({ channel: 'left', party: 'local', outcome: 'applied' });
    expect(left!.before.speechDbfs!).toBeCloseTo(-38, 0);
    expect(left!.gainDb).toBeGreaterThan(17);
    expect(left!.limiter.acted).toBe(true);
    expect(left!.limiter.valuesOverCeiling).toBeGreaterThan(0);
    expect(Math.abs(left!.after.speechDbfs! - after[0]!.speechDbfs!)).toBeLessThan(0.3);
    expect(right).toMatchObject({
      channel: 'right',
      party: 'remote',
      outcome: 'applied',
      dcRemoved: true,
      limiter: { acted: false },
    });
    expect(Math.abs(right!.before.speechDbfs! - rightLevel)).toBeLessThan(0.3);
    expect(right!.before.dcOffset).toBeCloseTo(0.05, 2);
    expect(right!.gainDb).toBeLessThan(-4);
    expect(p.plan.action).toBe('transcode');
    expect(p.plan.reasons.at(-1)).toMatch(/levels normalized/);
  });

  it('leaves a silent side silent', async () => {
    const { prepared: p } = await prepare(file('one-sided.wav'));
    const after = await meter(p.path, 2, RATE);
    expect(Math.abs(after[0]!.speechDbfs! - TARGET)).toBeLessThanOrEqual(1);
    expect(after[1]!.speechDbfs).toBeNull();
    expect(after[1]!.peakDbfs).toBe(-Infinity);
    expect(p.level!.channels[1]).toMatchObject({ outcome: 'silent', gainDb: 0, limiter: { acted: false } });
    expect(p.samples).toBe(SAMPLES);
  });

  it('works on mono (one channel)', async () => {
    const { prepared: p } = await prepare(file('mono-38.wav'));
    const [after] = await meter(p.path, 1, RATE);
    expect(Math.abs(after!.speechDbfs! - TARGET)).toBeLessThanOrEqual(1);
    expect(after!.peakDbfs).toBeLessThanOrEqual(CEILING);
    expect(p.format.channels).toBe(1);
    expect(p.samples).toBe(SAMPLES);
    expect(p.level!.channels).toEqual([expect.objectContaining({ channel: 'mono', outcome: 'applied' })]);
  });

  it('passes a file already in range through byte for byte', async () => {
    const { prepared: p, input } = await prepare(file('normal.wav'));
    expect(p.plan.action).toBe('pass-through');
    expect(p.path).toBe(input);
    expect(await sha(p.path)).toBe(await sha(file('normal.wav')));
    expect(p.level).toMatchObject({ action: 'unchanged', rendered: false });
    expect(p.level!.channels.map((c) => c.outcome)).toEqual(['in-range', 'in-range']);
  });

  it('MP3 out: what we convert is encoded once, from the lossless audio; a compliant WAV keeps its format', async () => {
    await ff('-i', file('normal.wav'), '-c:a', 'flac', file('normal.flac'));
    const { prepared: p } = await prepare(file('normal.flac'), {}, depsFor({}, 'mp3'));
    expect(p.level).toMatchObject({ action: 'unchanged' });
    expect(p).toMatchObject({ container: 'mp3', contentType: 'audio/mpeg' });
    expect(p.format.codec).toBe('mp3');
    expect(p.filename).toMatch(/\.mp3$/);
    expect(p.plan.reasons.join(' ')).toMatch(/encoded as mp3 once, from the lossless audio/);
    expect((await readMp3Info(p.path))!.totalSamples).toBe((await readWavInfo(file('normal.wav')))!.frames);
    const { prepared: kept, input } = await prepare(file('normal.wav'), {}, depsFor({}, 'mp3'));
    expect(kept.plan.action).toBe('pass-through');
    expect(kept.path).toBe(input);
  });

  it('does nothing with level=off in the request, whatever LEVEL says', async () => {
    const { prepared: p, input } = await prepare(file('call.wav'), { level: 'off' });
    expect(p.plan.action).toBe('pass-through');
    expect(p.path).toBe(input);
    expect(p.level).toBeUndefined();
  });

  it('leaves a side alone when it needs more gain than LEVEL_MAX_GAIN_DB', async () => {
    const { prepared: p } = await prepare(file('call.wav'), {}, depsFor({ maxGainDb: 12 }));
    const [left, right] = p.level!.channels;
    expect(left).toMatchObject({ outcome: 'over-gain-cap', gainDb: 0 });
    expect(right).toMatchObject({ outcome: 'applied', dcRemoved: true });
    const after = await meter(p.path, 2, RATE);
    expect(Math.abs(after[0]!.speechDbfs! - -38)).toBeLessThan(0.3);
    expect(Math.abs(after[1]!.speechDbfs! - TARGET)).toBeLessThanOrEqual(1);
  });

  it.each(['alaw', 'mp3'] as const)(
    'keeps the %s output format, its length and its levels on target',
    async (format) => {
      const { prepared: p } = await prepare(file('call.flac'), {}, depsFor({}, format));
      expect(p.level, JSON.stringify(p.level)).toMatchObject({ action: 'normalized' });
      expect(p.format.codec).toBe(format === 'alaw' ? 'pcm_alaw' : 'mp3');
      const samples =
        format === 'alaw' ? (await readWavInfo(p.path))!.frames : (await readMp3Info(p.path))!.totalSamples;
      // The first render (to the target) measured the length; the level pass kept it to the sample.
      expect(samples).toBe(SAMPLES);
      const after = await meter(p.path, 2, RATE);
      for (const side of after) expect(Math.abs(side.speechDbfs! - TARGET)).toBeLessThanOrEqual(1);
    },
  );
});
