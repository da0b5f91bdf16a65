/**
 * Stereo preparation, the pure parts: which party goes where (profiles and
 * channel order), the ffmpeg argv for merging and routing, the analysis
 * verdicts from synthetic signals, and the per-request options.
 */
import { describe, expect, it } from 'vitest';
import {
  PROFILES,
  parseChannelSelection,
  partiesFor,
  resolveOrder,
  routeForOrder,
  selectionProblem,
  type Direction,
} from '../../src/media/channels.js';
import { mergedLength, mergeGraph, offsetSamples, routeFilter } from '../../src/media/merge.js';
import type { MergeSpec, Mix } from '../../src/media/merge.js';
import { argsFor, type RenderOutput, type SourceFile } from '../../src/media/render-job.js';
import type { ChannelRoute } from '../../src/media/channels.js';
import type { Target } from '../../src/media/plan.js';

/** The render jobs these tables were written for, from their old argument lists. */
type Io = { output: string; maxDurationSeconds: number; maxOutputBytes: number };
const out = (io: Io): RenderOutput => ({
  path: io.output,
  maxDurationSeconds: io.maxDurationSeconds,
  maxOutputBytes: io.maxOutputBytes,
});
const mergeArgs = (merge: MergeSpec, target: Target, io: Io) =>
  argsFor({ kind: 'merge-legs', merge, target, output: out(io) });
const legArgs = (input: SourceFile, sampleRate: number, io: Io) =>
  argsFor({ kind: 'decode-legs', legs: [{ input, output: out(io) }], sampleRate });
const routeArgs = (input: SourceFile, route: ChannelRoute, mix: Mix, target: Target, io: Io) =>
  argsFor({ kind: 'route', input, route, mix, target, output: out(io) });
import { classify } from '../../src/media/analysis.js';
import { LevelMeter } from '../../src/media/level-meter.js';
import { targetFor } from '../../src/media/plan.js';
import { rawHintFor } from '../../src/media/formats.js';
import { parseStereoOptions } from '../../src/pipeline/call-options.js';
import { loadConfig } from '../../src/config.js';
import { SOURCE_PROFILES, type ChannelOrder, type SourceProfile } from '../../src/media/channels.js';
import { GatewayError } from '../../src/errors.js';

const defaults = { channelOrder: 'local-left' as ChannelOrder, sourceProfile: 'generic' as SourceProfile };

describe('resolveOrder: who is on position 1', () => {
  const cases: Array<
    [
      string,
      { channelOrder?: ChannelOrder; sourceProfile?: SourceProfile },
      typeof defaults,
      Direction | undefined,
      ChannelOrder,
      RegExp,
    ]
  > = [
    ['default', {}, defaults, 2, 'local-left', /CHANNEL_ORDER=local-left/],
    [
      'CHANNEL_ORDER=local-right',
      {},
      { ...defaults, channelOrder: 'local-right' },
      1,
      'local-right',
      /CHANNEL_ORDER=local-right/,
    ],
    [
      'request channelOrder beats everything',
      { channelOrder: 'local-right' },
      { channelOrder: 'local-left', sourceProfile: 'twilio-dual' },
      2,
      'local-right',
      /in the request/,
    ],
    [
      'twilio-dual, incoming: the caller (remote) is first',
      { sourceProfile: 'twilio-dual' },
      defaults,
      1,
      'local-right',
      /twilio-dual.*incoming/,
    ],
    [
      'twilio-dual, outgoing: the caller (local) is first',
      { sourceProfile: 'twilio-dual' },
      defaults,
      2,
      'local-left',
      /outgoing/,
    ],
    [
      'freeswitch from SOURCE_PROFILE, incoming',
      {},
      { ...defaults, sourceProfile: 'freeswitch' },
      1,
      'local-right',
      /SOURCE_PROFILE=freeswitch/,
    ],
    [
      'asterisk-mixmonitor, outgoing',
      { sourceProfile: 'asterisk-mixmonitor' },
      defaults,
      2,
      'local-left',
      /asterisk-mixmonitor/,
    ],
    [
      'request generic overrides SOURCE_PROFILE',
      { sourceProfile: 'generic' },
      { ...defaults, sourceProfile: 'freeswitch' },
      1,
      'local-left',
      /CHANNEL_ORDER/,
    ],
  ];
  it.each(cases)('%s', (_name, choice, defs, direction, order, decidedBy) => {
    const d = resolveOrder(choice, defs, direction);
    expect(d.order).toBe(order);
    expect(d.decidedBy).toMatch(decidedBy);
    expect(d.warnings).toEqual([]);
  });

  it.each<Direction | undefined>([0, undefined])(
    'a caller-first profile without a direction (%s) falls back to CHANNEL_ORDER, with a warning',
    (direction) => {
      const d = resolveOrder({ sourceProfile: 'twilio-dual' }, { ...defaults, channelOrder: 'local-right' }, direction);
      expect(d.order).toBe('local-right');
      expect(d.warnings.join()).toMatch(/direction/);
    },
  );

  it("documents every profile, with the source's own references", () => {
    for (const name of SOURCE_PROFILES) {
      const p = PROFILES[name];
      expect(p.first.length).toBeGreaterThan(5);
      if (name !== 'generic') expect(p.references.length).toBeGreaterThan(0);
    }
  });

  it('partiesFor and routeForOrder agree', () => {
    expect(partiesFor('local-left')).toEqual(['local', 'remote']);
    expect(partiesFor('local-right')).toEqual(['remote', 'local']);
    expect(routeForOrder('local-left')).toEqual({ local: 0, remote: 1 });
    expect(routeForOrder('local-right')).toEqual({ local: 1, remote: 0 });
  });
});

describe('explicit channel selection', () => {
  it.each([
    ['3,4', { local: 2, remote: 3 }],
    [' 2 , 1 ', { local: 1, remote: 0 }],
    ['16,1', { local: 15, remote: 0 }],
  ])('%s', (text, route) => {
    expect(parseChannelSelection(text)).toEqual(route);
  });
  it.each(['3', '3,4,5', '0,1', '2,2', 'a,b', '-1,2', ''])('refuses %j', (text) => {
    expect(typeof parseChannelSelection(text)).toBe('string');
  });
  it('checks the selection against the channel count', () => {
    expect(selectionProblem({ local: 2, remote: 3 }, 4)).toBeUndefined();
    expect(selectionProblem({ local: 2, remote: 3 }, 2)).toMatch(/channel 4, but the audio has 2 channels/);
  });
});

describe('merge argv (two legs)', () => {
  const target = targetFor({ format: 'pcm16', sampleRate: 8000, channels: 'stereo', mp3BitrateKbps: 32 }, 2);
  const io = { output: '/job/stereo/out.wav', maxDurationSeconds: 11, maxOutputBytes: 400_000 };
  const spec: MergeSpec = {
    local: { wav: '/job/stereo/leg-local.wav', delaySamples: 0 },
    remote: { wav: '/job/stereo/leg-remote.wav', delaySamples: 4000 },
    totalSamples: 80_000,
    mix: 'stereo',
  };

  it('offsets and lengths are in samples at the output rate', () => {
    expect(offsetSamples(500, 8000)).toBe(4000);
    expect(offsetSamples(0.0625, 16000)).toBe(1);
    expect(
      mergedLength([
        { samples: 80_000, delaySamples: 0 },
        { samples: 10_000, delaySamples: 4000 },
      ]),
    ).toBe(80_000);
    expect(
      mergedLength([
        { samples: 8_000, delaySamples: 0 },
        { samples: 10_000, delaySamples: 4000 },
      ]),
    ).toBe(14_000);
  });

  it.each<[string, Partial<MergeSpec>, string]>([
    [
      'local left, remote delayed, both padded to the whole length',
      {},
      '[0:a]aformat=sample_fmts=s16:channel_layouts=mono,apad=whole_len=80000[local];' +
        '[1:a]aformat=sample_fmts=s16:channel_layouts=mono,adelay=delays=4000S:all=1,apad=whole_len=80000[remote];' +
        '[local][remote]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR[out]',
    ],
    [
      'mono for CHANNELS=mono: the parties summed',
      { mix: 'mono-sum', remote: { wav: 'r', delaySamples: 0 } },
      '[0:a]aformat=sample_fmts=s16:channel_layouts=mono,apad=whole_len=80000[local];' +
        '[1:a]aformat=sample_fmts=s16:channel_layouts=mono,apad=whole_len=80000[remote];' +
        '[local][remote]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR,pan=mono|c0=c0+c1[out]',
    ],
  ])('%s', (_name, change, graph) => {
    expect(mergeGraph({ ...spec, ...change })).toBe(graph);
  });

  it('keeps the input restrictions and writes to a file: path', () => {
    const args = mergeArgs(spec, target, io);
    const inputs = args.flatMap((a, i) => (a === '-i' ? [args[i + 1]] : []));
    expect(inputs).toEqual(['file:/job/stereo/leg-local.wav', 'file:/job/stereo/leg-remote.wav']);
    expect(args.filter((a) => a === '-protocol_whitelist')).toHaveLength(2);
    expect(args.filter((a) => a === '-format_whitelist')).toHaveLength(2);
    for (const [i, a] of args.entries()) if (a === '-protocol_whitelist') expect(args[i + 1]).toBe('file');
    expect(args).not.toContain('amix');
    expect(args.join(' ')).toMatch(
      /-map \[out\] .*-t 11 -ar 8000 -c:a pcm_s16le -fs 400000 -bitexact -f wav -y file:\/job\/stereo\/out\.wav$/,
    );
  });

  it('an MP3 target gets its bitrate and Xing header', () => {
    const mp3 = targetFor({ format: 'mp3', sampleRate: 8000, channels: 'stereo', mp3BitrateKbps: 24 }, 2);
    expect(mergeArgs(spec, mp3, { ...io, output: '/o.mp3' }).join(' ')).toMatch(
      /-c:a libmp3lame -b:a 24k -write_xing 1 -id3v2_version 0 .* -f mp3 -y file:\/o\.mp3$/,
    );
  });

  it('refuses a target whose channel count does not match the mix, and bad lengths', () => {
    expect(() => mergeArgs({ ...spec, mix: 'mono-average' }, target, io)).toThrow(RangeError);
    expect(() => mergeGraph({ ...spec, totalSamples: 0 })).toThrow(RangeError);
    expect(() => mergeGraph({ ...spec, remote: { wav: 'r', delaySamples: -1 } })).toThrow(RangeError);
  });

  it('decodes each leg to mono PCM16 at the output rate, with its raw hint', () => {
    const args = legArgs({ path: '/job/in-remoteAttachment', hint: rawHintFor('gsm') }, 16000, {
      output: '/job/stereo/leg-remote.wav',
      maxDurationSeconds: 600,
      maxOutputBytes: 1e6,
    });
    expect(args.slice(0, 9)).toEqual([
      '-protocol_whitelist',
      'file',
      '-format_whitelist',
      'gsm',
      '-f',
      'gsm',
      '-i',
      'file:/job/in-remoteAttachment',
      '-map',
    ]);
    expect(args.join(' ')).toContain('-map 0:a:0 -vn -sn -dn');
    expect(args.join(' ')).toContain('-t 600 -ac 1 -ar 16000 -c:a pcm_s16le');
    expect(args.at(-1)).toBe('file:/job/stereo/leg-remote.wav');
  });
});

describe('route argv (one file)', () => {
  it.each<[string, { local: number; remote: number }, 'stereo' | 'mono-average' | 'mono-sum', string]>([
    ['identity', { local: 0, remote: 1 }, 'stereo', 'pan=stereo|c0=c0|c1=c1'],
    ['swap', { local: 1, remote: 0 }, 'stereo', 'pan=stereo|c0=c1|c1=c0'],
    ['channels 3 and 4 of four', { local: 2, remote: 3 }, 'stereo', 'pan=stereo|c0=c2|c1=c3'],
    ['fake stereo collapsed', { local: 1, remote: 0 }, 'mono-average', 'pan=mono|c0=0.5*c1+0.5*c0'],
  ])('%s', (_name, route, mix, filter) => {
    expect(routeFilter(route, mix)).toBe(filter);
  });

  it('keeps the input options of the raw hint and audio-only mapping', () => {
    const target = targetFor({ format: 'alaw', sampleRate: 8000, channels: 'stereo', mp3BitrateKbps: 32 }, 2);
    const args = routeArgs({ path: '/job/in-attachment', hint: undefined }, { local: 1, remote: 0 }, 'stereo', target, {
      output: '/job/stereo/out.wav',
      maxDurationSeconds: 100,
      maxOutputBytes: 1e6,
    });
    expect(args.slice(0, 4)).toEqual([
      '-protocol_whitelist',
      'file',
      '-format_whitelist',
      expect.stringContaining('wav,') as unknown as string,
    ]);
    expect(args.join(' ')).toContain('-i file:/job/in-attachment -map 0:a:0 -vn -sn -dn');
    expect(args.join(' ')).toContain('-af pan=stereo|c0=c1|c1=c0');
    expect(args.join(' ')).toContain('-c:a pcm_alaw');
    expect(() => routeFilter({ local: 64, remote: 0 }, 'stereo')).toThrow(RangeError);
  });
});

/** Interleaved stereo from two per-channel generators (t in seconds). */
function stereo(
  seconds: number,
  rate: number,
  left: (t: number) => number,
  right: (t: number) => number,
): Float32Array {
  const n = Math.round(seconds * rate);
  const out = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    out[2 * i] = left(i / rate);
    out[2 * i + 1] = right(i / rate);
  }
  return out;
}
/** A "talker": a 300 Hz tone during [from, to), else silence. */
const talk =
  (from: number, to: number, amplitude = 0.3) =>
  (t: number) =>
    t >= from && t < to ? amplitude * Math.sin(2 * Math.PI * 300 * t) : 0;
const analyse = (samples: Float32Array, rate = 8000) => {
  const meter = new LevelMeter(2, rate);
  // Feed in odd-sized chunks, like a stream would.
  for (let i = 0; i < samples.length; i += 2 * 777)
    meter.push(samples.subarray(i, Math.min(samples.length, i + 2 * 777)));
  return classify(meter.result());
};

describe('analysis verdicts', () => {
  it('a real two-party call: each channel talks its share, nothing flagged', () => {
    const a = analyse(stereo(10, 8000, talk(0, 4), talk(5, 8)));
    expect(a.fakeStereo).toBe(false);
    expect(a.silentChannels).toEqual([]);
    expect(a.silentRecording).toBe(false);
    expect(a.channels[0]!.speechShare).toBeCloseTo(0.4, 2);
    expect(a.channels[1]!.speechShare).toBeCloseTo(0.3, 2);
    expect(a.channels[0]!.peakDbfs).toBeCloseTo(20 * Math.log10(0.3), 0);
    // A sine's RMS is its amplitude / √2, here 40% of the time.
    expect(a.channels[0]!.rmsDbfs).toBeCloseTo(10 * Math.log10((0.3 ** 2 / 2) * 0.4), 0);
    expect(Math.abs(a.correlation!)).toBeLessThan(0.05);
  });

  it('fake stereo: the same mix on both channels', () => {
    const mix = (t: number) => talk(0, 4)(t) + talk(5, 8, 0.2)(t);
    const a = analyse(stereo(10, 8000, mix, (t) => 0.9 * mix(t)));
    expect(a.correlation).toBeGreaterThan(0.99);
    expect(a.fakeStereo).toBe(true);
  });

  it('not fake when the copies differ a lot in level (one side leaks into the other)', () => {
    const a = analyse(stereo(10, 8000, talk(0, 4), (t) => 0.01 * talk(0, 4)(t) + talk(5, 8)(t)));
    expect(a.fakeStereo).toBe(false);
  });

  it('one silent side', () => {
    const a = analyse(stereo(10, 8000, talk(1, 6), () => 0));
    expect(a.silentChannels).toEqual([1]);
    expect(a.channels[1]!.rmsDbfs).toBeNull();
    expect(a.fakeStereo).toBe(false);
  });

  it('one side with only faint line noise is silent too', () => {
    let seed = 1;
    const noise = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.001;
    const a = analyse(stereo(10, 8000, talk(1, 6), noise));
    expect(a.silentChannels).toEqual([1]);
  });

  it('an entirely silent recording', () => {
    const a = analyse(
      stereo(
        3,
        8000,
        () => 0,
        () => 0,
      ),
    );
    expect(a.silentRecording).toBe(true);
    expect(a.silentChannels).toEqual([]);
    expect(a.fakeStereo).toBe(false);
    expect(a.correlation).toBeNull();
  });
});

describe('per-request options (form fields or query string)', () => {
  const max = 43_200_000;
  it('reads every option', () => {
    expect(
      parseStereoOptions(
        { channelOrder: 'local-right', channels: '3,4', localOffsetMs: '250' },
        { sourceProfile: 'freeswitch', remoteOffsetMs: '1200' },
        max,
      ),
    ).toEqual({
      channelOrder: 'local-right',
      sourceProfile: 'freeswitch',
      channels: { local: 2, remote: 3 },
      localOffsetMs: 250,
      remoteOffsetMs: 1200,
    });
    expect(parseStereoOptions({}, {}, max)).toEqual({});
  });

  it('lists every problem at once, as reason 0', () => {
    try {
      parseStereoOptions(
        { channelOrder: 'left', channels: '1,1', localOffsetMs: '-5' },
        { remoteOffsetMs: ['1', '2'], sourceProfile: 'avaya' },
        max,
      );
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(GatewayError);
      const e = error as GatewayError;
      expect(e.reason).toBe(0);
      for (const word of ['channelOrder', 'sourceProfile', 'two different channels', 'localOffsetMs', 'remoteOffsetMs'])
        expect(e.message).toContain(word);
    }
  });

  it('refuses the same option with two values, and offsets beyond the longest recording', () => {
    expect(() => parseStereoOptions({ channelOrder: 'local-left' }, { channelOrder: 'local-right' }, max)).toThrow(
      /in the form but/,
    );
    expect(() => parseStereoOptions({ localOffsetMs: '5000' }, {}, 4000)).toThrow(/at most 4000/);
  });
});

describe('configuration', () => {
  it('defaults and problems', () => {
    expect(loadConfig({}).stereo).toEqual({ channelOrder: 'local-left', sourceProfile: 'generic', check: 'warn' });
    expect(
      loadConfig({ CHANNEL_ORDER: 'local-right', SOURCE_PROFILE: 'twilio-dual', STEREO_CHECK: 'collapse' }).stereo,
    ).toEqual({
      channelOrder: 'local-right',
      sourceProfile: 'twilio-dual',
      check: 'collapse',
    });
    try {
      loadConfig({ CHANNEL_ORDER: 'right', SOURCE_PROFILE: 'avaya', STEREO_CHECK: 'fix' });
      expect.unreachable();
    } catch (error) {
      const problems = (error as { problems: string[] }).problems.join('\n');
      for (const name of ['CHANNEL_ORDER', 'SOURCE_PROFILE', 'STEREO_CHECK']) expect(problems).toContain(name);
    }
  });
});
