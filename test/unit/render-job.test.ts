import { describe, expect, it } from 'vitest';
import { rawHintFor } from '../../src/media/formats.js';
import { targetFor } from '../../src/media/plan.js';
import { argsFor, decodeOutput, knownOutput, legTarget, type RenderJob } from '../../src/media/render-job.js';

const wav = targetFor({ format: 'pcm16', sampleRate: 8000, channels: 'stereo', mp3BitrateKbps: 32 }, 2);
const mono = targetFor({ format: 'alaw', sampleRate: 8000, channels: 'mono', mp3BitrateKbps: 32 }, 1);
const mp3 = targetFor({ format: 'mp3', sampleRate: 8000, channels: 'stereo', mp3BitrateKbps: 24 }, 2);
const out = { path: '/job/out.wav', maxDurationSeconds: 61, maxOutputBytes: 2e6 };
const src = { path: '/job/in', hint: undefined };
const merge = {
  local: { wav: '/job/leg-local.wav', delaySamples: 0 },
  remote: { wav: '/job/leg-remote.wav', delaySamples: 80 },
  totalSamples: 8000,
  mix: 'stereo',
} as const;

describe('argsFor: one argv builder keyed by job type', () => {
  it.each<[RenderJob, string[], string]>([
    [{ kind: 'transcode', input: src, target: mono, output: out }, ['file:/job/in'], '-map 0:a:0 -vn -sn -dn'],
    [
      {
        kind: 'transcode',
        input: { path: '/job/in', hint: rawHintFor('gsm') },
        target: mono,
        trim: { startSample: 0, endSample: 160 },
        output: out,
      },
      ['file:/job/in'],
      '-af atrim=start_sample=0:end_sample=160',
    ],
    [
      { kind: 'route', input: src, route: { local: 1, remote: 0 }, mix: 'stereo', target: wav, output: out },
      ['file:/job/in'],
      '-af pan=stereo|c0=c1|c1=c0',
    ],
    [
      {
        kind: 'route',
        input: src,
        route: { local: 1, remote: 0 },
        mix: 'stereo',
        target: wav,
        trim: { startSample: 0, endSample: 17600 },
        output: out,
      },
      ['file:/job/in'],
      '-af atrim=start_sample=0:end_sample=17600,asetpts=PTS-STARTPTS,apad=whole_len=17600,pan=stereo|c0=c1|c1=c0',
    ],
    [
      {
        kind: 'decode-legs',
        sampleRate: 8000,
        legs: [
          { input: { path: '/job/a', hint: undefined }, output: { ...out, path: '/job/leg-local.wav' } },
          {
            input: { path: '/job/b', hint: undefined },
            output: { ...out, path: '/job/leg-remote.wav' },
            trim: { startSample: 0, endSample: 9876 },
          },
        ],
      },
      ['file:/job/a', 'file:/job/b'],
      '-map 1:a:0 -vn -sn -dn -map_metadata -1 -map_chapters -1 -af atrim=start_sample=0:end_sample=9876',
    ],
    [
      {
        kind: 'decode-legs',
        sampleRate: 8000,
        legs: [
          { input: { path: '/job/a', hint: undefined }, output: { ...out, path: '/job/leg-local.wav' } },
          { input: { path: '/job/b', hint: undefined }, output: { ...out, path: '/job/leg-remote.wav' } },
        ],
      },
      ['file:/job/a', 'file:/job/b'],
      '-map 1:a:0 -vn -sn -dn -map_metadata -1 -map_chapters -1 -t 61 -ac 1 -ar 8000 -c:a pcm_s16le',
    ],
    [
      { kind: 'merge-legs', merge, target: mp3, output: out },
      ['file:/job/leg-local.wav', 'file:/job/leg-remote.wav'],
      '-b:a 24k -write_xing 1',
    ],
    [
      {
        kind: 'level',
        input: '/job/out.mp3',
        inputContainer: 'mp3',
        graph: '[0:a]anull[out]',
        target: mp3,
        output: out,
      },
      ['file:/job/out.mp3'],
      '-format_whitelist mp3 -f mp3 -i file:/job/out.mp3 -filter_complex [0:a]anull[out] -map [out]',
    ],
    [
      { kind: 'decode-for-analysis', input: '/job/out.mp3', output: '/job/a.wav', seconds: 5 },
      ['file:/job/out.mp3'],
      '-c:a pcm_s16le -f wav',
    ],
  ])('job %#', (job, inputs, distinctive) => {
    const args = argsFor(job);
    expect(args.flatMap((a, i) => (a === '-i' ? [args[i + 1]] : []))).toEqual(inputs);
    // Every input is restricted to the file protocol, and so is every output path.
    expect(args.filter((a) => a === '-protocol_whitelist')).toHaveLength(inputs.length);
    expect(args.at(-1)).toMatch(/^file:\/job\//);
    expect(args.join(' ')).toContain(distinctive);
    if (job.kind !== 'decode-for-analysis') expect(args.join(' ')).toMatch(/-fs \d+ -bitexact -f (wav|mp3) -y file:/);
  });

  it('refuses a target whose channel count does not match the mix', () => {
    const job: RenderJob = { kind: 'merge-legs', merge: { ...merge, mix: 'mono-sum' }, target: wav, output: out };
    expect(() => argsFor(job)).toThrow(RangeError);
  });

  it('caps: a decode stops at its cap, a known length gets a second of slack', () => {
    const decode = decodeOutput('/o.wav', legTarget(8000), 100);
    expect(decode).toEqual({ path: '/o.wav', maxDurationSeconds: 100, maxOutputBytes: 2_680_576 });
    expect(knownOutput('/o.wav', legTarget(8000), 9.5)).toMatchObject({ maxDurationSeconds: 11 });
  });
});
