/**
 * probeWithoutFfprobe() against ffprobe: for generated WAV, MP3 and Ogg Opus
 * files every field of the ProbeResult equals ffprobe's (durations to its
 * microsecond), the plan is the same, and anything unusual is left to ffprobe.
 */
import { execFile, spawnSync } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeWithoutFfprobe } from '../../src/media/fast-probe.js';
import { isProbeFailure, probe, type ProbeResult } from '../../src/media/ffprobe.js';
import { resolveBinaries } from '../../src/media/ffmpeg-tools.js';
import { planFor, type OutputPolicy } from '../../src/media/plan.js';
import { readWavInfo } from '../../src/media/wav.js';
import { readMp3Info } from '../../src/media/mp3.js';
import { inspectAudio } from '../../src/pipeline/prepare.js';
import type { PrepareDeps } from '../../src/pipeline/prepared.js';
import { fixture } from '../helpers/fixtures.js';

const run = promisify(execFile);
const bins = resolveBinaries({});
let dir: string;

const ffmpeg = async (name: string, args: string[]): Promise<string> => {
  const out = path.join(dir, name);
  await run(bins.ffmpeg, ['-v', 'error', '-y', ...args, out]);
  return out;
};
const tone = (seconds: number, rate = 16_000): string[] => ['-f', 'lavfi', '-i', `sine=f=440:d=${seconds}:r=${rate}`];

/** opusenc (Debian's opus-tools) writes Ogg Opus its own way; outside CI its absence only skips those files. */
const opusencMissing = spawnSync('opusenc', ['--version']).status !== 0;
if (opusencMissing && process.env.CI) throw new Error('opusenc not found: install Debian opus-tools');

/**
 * A WAVE_FORMAT_EXTENSIBLE file around raw samples: ffmpeg writes one only for
 * more than 16 bits or 48 kHz, so A-law, u-law and 8/16-bit variants are made here.
 */
function extensibleWav(
  samples: Buffer,
  f: { tag: number; bits: number; channels: number; rate: number; validBits?: number; mask?: number; guid?: Buffer },
): Buffer {
  const blockAlign = (f.channels * f.bits) / 8;
  const fmt = Buffer.alloc(40);
  fmt.writeUInt16LE(0xfffe, 0);
  fmt.writeUInt16LE(f.channels, 2);
  fmt.writeUInt32LE(f.rate, 4);
  fmt.writeUInt32LE(f.rate * blockAlign, 8);
  fmt.writeUInt16LE(blockAlign, 12);
  fmt.writeUInt16LE(f.bits, 14);
  fmt.writeUInt16LE(22, 16);
  fmt.writeUInt16LE(f.validBits ?? f.bits, 18);
  fmt.writeUInt32LE(f.mask ?? (f.channels === 1 ? 0x4 : 0x3), 20);
  fmt.writeUInt16LE(f.tag, 24);
  (f.guid ?? Buffer.from('000000001000800000aa00389b71', 'hex')).copy(fmt, 26);
  const chunk = (id: string, body: Buffer): Buffer => {
    const header = Buffer.alloc(8);
    header.write(id, 0, 'latin1');
    header.writeUInt32LE(body.length, 4);
    return Buffer.concat([header, body, Buffer.alloc(body.length & 1)]);
  };
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), chunk('fmt ', fmt), chunk('data', samples)]);
  return Buffer.concat([chunk('RIFF', body)]);
}

async function rawSamples(codec: string, channels: number, seconds: number): Promise<Buffer> {
  const format = { pcm_alaw: 'alaw', pcm_mulaw: 'mulaw', pcm_u8: 'u8', pcm_s16le: 's16le' }[codec]!;
  const out = await ffmpeg(`raw-${codec}-${channels}.${format}`, [
    ...tone(seconds, 8000),
    '-ac',
    `${channels}`,
    '-f',
    format,
  ]);
  return readFile(out);
}

async function extensible(name: string, codec: string, tag: number, bits: number, channels: number, extra = {}) {
  const samples = await rawSamples(codec, channels, 0.7);
  const out = path.join(dir, name);
  await writeFile(out, extensibleWav(samples, { tag, bits, channels, rate: 8000, ...extra }));
  return out;
}

/** Overwrites bytes of a file at an offset (a header field made wrong). */
async function patched(source: string, name: string, offset: number, bytes: Buffer): Promise<string> {
  const data = await readFile(source);
  bytes.copy(data, offset < 0 ? data.length + offset : offset);
  const out = path.join(dir, name);
  await writeFile(out, data);
  return out;
}

async function ffprobeOf(file: string): Promise<ProbeResult> {
  const result = await probe(bins, file, { extension: path.extname(file).slice(1), timeoutMs: 30_000 });
  if (isProbeFailure(result)) throw new Error(`ffprobe failed on ${file}: ${result.message}`);
  return result;
}

/** The fields compared exactly, and the two durations compared to ffprobe's microsecond. */
function comparable(p: ProbeResult) {
  const { durationSeconds, audio, ...rest } = p;
  const { durationSeconds: streamSeconds, ...stream } = audio;
  return { fields: { ...rest, audio: stream }, durationSeconds, streamSeconds };
}

const POLICIES: OutputPolicy[] = [
  { format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 },
  { format: 'alaw', sampleRate: 8000, channels: 'mono', mp3BitrateKbps: 32 },
  { format: 'mp3', sampleRate: 16000, channels: 'stereo', mp3BitrateKbps: 32 },
];

const FAST: Array<[string, () => Promise<string>]> = [];
const SLOW: Array<[string, () => Promise<string>]> = [];

for (const channels of [1, 2]) {
  for (const [seconds, bitrate] of [
    [0.05, '16k'],
    [0.9, '64k'],
    [2.5, '24k'],
    [7.3, '12k'],
  ] as const) {
    const name = `ff-${channels}ch-${seconds}s-${bitrate}.opus`;
    FAST.push([name, () => ffmpeg(name, [...tone(seconds), '-ac', `${channels}`, '-c:a', 'libopus', '-b:a', bitrate])]);
  }
  for (const frame of ['2.5', '60']) {
    const name = `ff-${channels}ch-frame${frame}.opus`;
    FAST.push([
      name,
      () => ffmpeg(name, [...tone(1.3, 8000), '-ac', `${channels}`, '-c:a', 'libopus', '-frame_duration', frame]),
    ]);
  }
  if (!opusencMissing) {
    for (const seconds of [0.3, 3.1]) {
      const name = `opusenc-${channels}ch-${seconds}s.opus`;
      FAST.push([
        name,
        async () => {
          const wav = await ffmpeg(`opusenc-src-${channels}-${seconds}.wav`, [
            ...tone(seconds, 44_100),
            '-ac',
            `${channels}`,
          ]);
          const out = path.join(dir, name);
          await run('opusenc', ['--quiet', '--bitrate', '20', wav, out]);
          return out;
        },
      ]);
    }
  }
  for (const codec of [
    'pcm_s24le',
    'pcm_s32le',
    'pcm_f32le',
    'pcm_f64le',
    'pcm_alaw',
    'pcm_mulaw',
    'pcm_u8',
    'pcm_s16le',
  ]) {
    const name = `ff-${codec}-${channels}ch.wav`;
    FAST.push([name, () => ffmpeg(name, [...tone(0.61), '-ac', `${channels}`, '-c:a', codec])]);
  }
  for (const [flag, label] of [
    ['-pcm24', 'pcm24'],
    ['-pcm32', 'pcm32'],
    ['-float32', 'float32'],
    ['-float64', 'float64'],
  ] as const) {
    const name = `sndfile-${label}-${channels}ch.wav`;
    FAST.push([
      name,
      async () => {
        const src = await ffmpeg(`sndfile-src-${label}-${channels}.wav`, [...tone(0.33, 22_050), '-ac', `${channels}`]);
        const out = path.join(dir, name);
        await run('sndfile-convert', [flag, src, out]);
        return out;
      },
    ]);
  }
  for (const [codec, tag, bits] of [
    ['pcm_alaw', 6, 8],
    ['pcm_mulaw', 7, 8],
    ['pcm_u8', 1, 8],
    ['pcm_s16le', 1, 16],
  ] as const) {
    const name = `extensible-${codec}-${channels}ch.wav`;
    FAST.push([name, () => extensible(name, codec, tag, bits, channels)]);
  }
}
FAST.push([
  'ff-96k-stereo-extensible.wav',
  () => ffmpeg('ff-96k-stereo-extensible.wav', [...tone(0.4, 96_000), '-ac', '2']),
]);

const s24 = (): Promise<string> => ffmpeg('plain-src.wav', [...tone(0.5), '-c:a', 'pcm_s24le', '-rf64', 'never']);
const sndfile24 = async (): Promise<string> => {
  const out = path.join(dir, 'sndfile24-src.wav');
  await run('sndfile-convert', ['-pcm24', await ffmpeg('s16-src.wav', [...tone(0.5), '-ac', '2']), out]);
  return out;
};
const stereoOpus = (): Promise<string> => ffmpeg('src.opus', [...tone(2.2), '-ac', '2', '-c:a', 'libopus']);
SLOW.push(
  // WAV: fields that disagree, sizes that lie, layouts and codecs left to ffprobe.
  ['wrong block align', async () => patched(await sndfile24(), 'bad-align.wav', 32, Buffer.from([5, 0]))],
  ['wrong byte rate', async () => patched(await sndfile24(), 'bad-rate.wav', 28, Buffer.from([1, 2, 3, 0]))],
  [
    'truncated data chunk',
    async () => {
      const out = await patched(await sndfile24(), 'truncated.wav', 0, Buffer.alloc(0));
      await truncate(out, 4000);
      return out;
    },
  ],
  ['three channels', () => ffmpeg('three.wav', [...tone(0.3), '-ac', '3', '-c:a', 'pcm_s24le'])],
  ['IMA ADPCM', () => ffmpeg('ima.wav', [...tone(0.3, 8000), '-c:a', 'adpcm_ima_wav'])],
  ['GSM', () => ffmpeg('gsm.wav', [...tone(0.3, 8000), '-c:a', 'gsm_ms'])],
  ['extensible, 12 of 16 bits valid', () => extensible('valid20.wav', 'pcm_s16le', 1, 16, 2, { validBits: 12 })],
  ['extensible, a front-left mask', () => extensible('mask-fl.wav', 'pcm_s16le', 1, 16, 1, { mask: 0x1 })],
  ['extensible, no mask', () => extensible('mask-0.wav', 'pcm_alaw', 6, 8, 2, { mask: 0 })],
  [
    'extensible, not the standard GUID',
    () =>
      extensible('guid.wav', 'pcm_s16le', 1, 16, 2, { guid: Buffer.from('00000000100080000000000000000000', 'hex') }),
  ],
  ['a 24-bit stereo header in RF64', () => ffmpeg('rf64.wav', [...tone(0.3), '-c:a', 'pcm_s24le', '-rf64', 'always'])],
  [
    'plain 24-bit made by ffmpeg then its rate set above 768 kHz',
    async () => patched(await s24(), 'rate.wav', 24, Buffer.from([0, 0, 0x10, 0])),
  ],
  // Ogg: anything but one plain Opus stream ending in an end-of-stream page.
  [
    'truncated Opus (no end-of-stream page)',
    async () => {
      const out = await patched(await stereoOpus(), 'cut.opus', 0, Buffer.alloc(0));
      const { size } = await import('node:fs/promises').then((fs) => fs.stat(out));
      await truncate(out, size - 50);
      return out;
    },
  ],
  [
    'Opus, a bad CRC on the last page',
    async () => patched(await stereoOpus(), 'crc.opus', -20, Buffer.from([0x55, 0xaa])),
  ],
  [
    'Opus with bytes after the last page',
    async () => {
      const out = await patched(await stereoOpus(), 'trailing.opus', 0, Buffer.alloc(0));
      await appendFile(out, Buffer.alloc(100, 7));
      return out;
    },
  ],
  [
    'chained Opus streams',
    async () => {
      const first = await readFile(await stereoOpus());
      const second = await readFile(await ffmpeg('second.opus', [...tone(1.1), '-c:a', 'libopus']));
      const out = path.join(dir, 'chained.opus');
      await writeFile(out, Buffer.concat([first, second]));
      return out;
    },
  ],
  [
    'two Opus streams in one Ogg',
    () => ffmpeg('two.opus', [...tone(1), '-map', '0:a', '-map', '0:a', '-c:a', 'libopus']),
  ],
  [
    'Opus, 4 channels (mapping family 1)',
    () => ffmpeg('four.opus', [...tone(1), '-af', 'pan=quad|c0=c0|c1=c0|c2=c0|c3=c0', '-c:a', 'libopus']),
  ],
  [
    'Opus stereo with mapping family 1',
    () => ffmpeg('family1.opus', [...tone(1), '-ac', '2', '-c:a', 'libopus', '-mapping_family', '1']),
  ],
  [
    'Opus whose stream starts before 0 (cut without re-encoding)',
    async () => ffmpeg('cut-copy.opus', ['-ss', '1.2', '-i', await stereoOpus(), '-c', 'copy']),
  ],
  [
    'Opus with 80 kB of tags',
    () => ffmpeg('tags.opus', [...tone(1), '-c:a', 'libopus', '-metadata', `comment=${'x'.repeat(80_000)}`]),
  ],
  ['Opus in WebM', () => ffmpeg('opus.webm', [...tone(1), '-c:a', 'libopus'])],
  ['Opus in Matroska', () => ffmpeg('opus.mka', [...tone(1), '-c:a', 'libopus'])],
  ['Opus in CAF', () => ffmpeg('opus.caf', [...tone(1), '-c:a', 'libopus'])],
  ['Ogg Vorbis', () => ffmpeg('vorbis.ogg', [...tone(1), '-c:a', 'vorbis', '-strict', '-2', '-ac', '2'])],
  ['Ogg FLAC', () => ffmpeg('flac.oga', [...tone(1), '-c:a', 'flac'])],
  ['Ogg Speex (fixture)', async () => fixture('speex.spx')],
);

const files = new Map<string, string>();
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fast-probe-'));
  for (const [name, make] of [...FAST, ...SLOW]) files.set(name, await make());
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('probeWithoutFfprobe reads what ffprobe reads', () => {
  it.each(FAST.map(([name]) => name))('%s', async (name) => {
    const file = files.get(name)!;
    const fast = await probeWithoutFfprobe(file, path.extname(file).slice(1));
    expect(fast, 'read without ffprobe').toBeDefined();
    const slow = await ffprobeOf(file);
    const [a, b] = [comparable(fast!.probe), comparable(slow)];
    expect(a.fields).toEqual(b.fields);
    // ffprobe prints durations to the microsecond.
    expect(Math.abs(a.durationSeconds! - b.durationSeconds!)).toBeLessThanOrEqual(5e-7);
    expect(Math.abs(a.streamSeconds! - b.streamSeconds!)).toBeLessThanOrEqual(5e-7);
    if (slow.formatName === 'ogg') expect(a.durationSeconds).toBe(b.durationSeconds);

    const wav = slow.formatName === 'wav' ? await readWavInfo(file) : null;
    const mp3 = slow.formatName === 'mp3' ? await readMp3Info(file) : null;
    for (const policy of POLICIES) {
      expect(planFor({ probe: fast!.probe, wav: fast!.wav, mp3: fast!.mp3 }, policy)).toEqual(
        planFor({ probe: slow, wav, mp3 }, policy),
      );
    }
    // inspectAudio takes this path: it plans without ever starting ffprobe.
    const deps: PrepareDeps = {
      bins: { ...bins, ffprobe: path.join(dir, 'no-ffprobe-here') },
      output: POLICIES[0]!,
      limits: { maxDurationSeconds: 43_200, maxChannelsIn: 16, processTimeoutMs: 60_000 },
    };
    const input = { path: file, originalName: name, extension: path.extname(file).slice(1) };
    const inspected = await inspectAudio(input, deps);
    expect(inspected.plan).toEqual(planFor({ probe: slow, wav, mp3 }, POLICIES[0]!));
  });
});

describe('MP3 (read by our own parser, as before)', () => {
  it.each(['mp3-stereo.mp3', 'mp3-mono.mp3'])('%s: the same codec, channels, rate and plan', async (name) => {
    const fast = await probeWithoutFfprobe(fixture(name), 'mp3');
    const slow = await ffprobeOf(fixture(name));
    expect(fast?.probe.audio).toMatchObject({
      codecName: slow.audio.codecName,
      channels: slow.audio.channels,
      sampleRate: slow.audio.sampleRate,
    });
    const mp3 = await readMp3Info(fixture(name));
    for (const policy of POLICIES) {
      expect(planFor({ probe: fast!.probe, wav: null, mp3: fast!.mp3 }, policy)).toEqual(
        planFor({ probe: slow, wav: null, mp3 }, policy),
      );
    }
  });
});

describe('anything unusual is left to ffprobe', () => {
  it.each(SLOW.map(([name]) => name))('%s', async (name) => {
    const file = files.get(name)!;
    expect(await probeWithoutFfprobe(file, path.extname(file).slice(1))).toBeUndefined();
  });

  it.each(['pcm24-mono.wav', 'float32-mono.wav', 'surround-5.1.wav', 'gsm-mono.wav', 'raw.ul', 'raw.mu'])(
    'fixture %s',
    async (name) => {
      const result = await probeWithoutFfprobe(fixture(name), name.split('.').pop()!);
      if (result === undefined) return;
      // Read without ffprobe only if ffprobe agrees on every field.
      expect(comparable(result.probe).fields).toEqual(comparable(await ffprobeOf(fixture(name))).fields);
    },
  );

  it.each(['empty.wav', 'garbage.mp3', 'not-audio.txt', 'raw.ul', 'raw.mu', 'surround-5.1.wav', 'gsm-mono.wav'])(
    'fixture %s',
    async (name) => {
      expect(await probeWithoutFfprobe(fixture(name), name.split('.').pop()!)).toBeUndefined();
    },
  );
});
