import { describe, expect, it } from 'vitest';
import { planFor, targetFor, type InputFacts, type OutputPolicy, type WavFacts } from '../../src/media/plan.js';
import type { SampleTrim, Target } from '../../src/media/plan.js';
import { argsFor as argsForJob } from '../../src/media/render-job.js';
import type { RawHint } from '../../src/media/formats.js';

interface TranscodeIo {
  input: string;
  output: string;
  hint: RawHint | undefined;
  maxDurationSeconds: number;
  maxOutputBytes: number;
  trim?: SampleTrim;
}
/** A transcode render job from the fields these tables were written with. */
const argsFor = (target: Target, io: TranscodeIo): string[] =>
  argsForJob({
    kind: 'transcode',
    input: { path: io.input, hint: io.hint },
    target,
    trim: io.trim,
    output: { path: io.output, maxDurationSeconds: io.maxDurationSeconds, maxOutputBytes: io.maxOutputBytes },
  });
import type { ProbeResult } from '../../src/media/ffprobe.js';
import { rawHintFor } from '../../src/media/formats.js';

const policy: OutputPolicy = { format: 'pcm16', sampleRate: 8000, channels: 'keep', mp3BitrateKbps: 32 };

function probeOf(
  formatName: string,
  codecName: string,
  channels: number,
  extra: Partial<ProbeResult> = {},
): ProbeResult {
  return {
    formatName,
    formatLongName: formatName,
    durationSeconds: 10,
    sizeBytes: 1000,
    audio: {
      index: 0,
      codecName,
      codecLongName: codecName,
      sampleFormat: 's16',
      sampleRate: 8000,
      channels,
      channelLayout: undefined,
      bitsPerSample: 16,
      durationSeconds: 10,
      bitRate: undefined,
    },
    audioStreamCount: 1,
    hasVideo: false,
    rawHint: undefined,
    ...extra,
  };
}

function wav(formatTag: number, bits: number, channels: number, extra: Partial<WavFacts> = {}): WavFacts {
  return {
    formatTag,
    effectiveFormatTag: formatTag,
    bitsPerSample: bits,
    channels,
    sampleRate: 8000,
    sizesConsistent: true,
    plainHeader: formatTag !== 0xfffe,
    frames: 8000,
    ...extra,
  };
}

const wavInput = (codec: string, w: WavFacts): InputFacts => ({
  probe: probeOf('wav', codec, w.channels),
  wav: w,
  mp3: null,
});

describe('planFor', () => {
  it.each<[string, InputFacts, string]>([
    ['PCM16 mono WAV', wavInput('pcm_s16le', wav(1, 16, 1)), 'pass-through'],
    ['PCM16 stereo WAV', wavInput('pcm_s16le', wav(1, 16, 2)), 'pass-through'],
    ['PCM8 WAV', wavInput('pcm_u8', wav(1, 8, 1)), 'pass-through'],
    ['A-law WAV', wavInput('pcm_alaw', wav(6, 8, 1)), 'pass-through'],
    ['u-law WAV', wavInput('pcm_mulaw', wav(7, 8, 2)), 'pass-through'],
    ['24-bit WAV', wavInput('pcm_s24le', wav(1, 24, 1)), 'transcode'],
    ['float WAV', wavInput('pcm_f32le', wav(3, 32, 1)), 'transcode'],
    ['extensible PCM16', wavInput('pcm_s16le', wav(0xfffe, 16, 2, { effectiveFormatTag: 1 })), 'repair-header'],
    ['extensible 24-bit PCM WAV', wavInput('pcm_s24le', wav(0xfffe, 24, 2, { effectiveFormatTag: 1 })), 'transcode'],
    ['GSM in WAV', wavInput('gsm_ms', wav(0x31, 0, 1)), 'transcode'],
    ['G.726 in WAV', wavInput('adpcm_g726', wav(0x45, 4, 1)), 'transcode'],
    ['streaming WAV (size 0)', wavInput('pcm_s16le', wav(1, 16, 1, { sizesConsistent: false })), 'repair-header'],
    ['empty WAV data', wavInput('pcm_s16le', wav(1, 16, 1, { frames: 0 })), 'transcode'],
    ['5.1 PCM16 WAV', wavInput('pcm_s16le', wav(1, 16, 6)), 'transcode'],
    [
      'MP3 layer III',
      { probe: probeOf('mp3', 'mp3', 2), wav: null, mp3: { layer: 3, channels: 2, frames: 10 } },
      'pass-through',
    ],
    [
      'MP2 in .mp3',
      { probe: probeOf('mp3', 'mp2', 2), wav: null, mp3: { layer: 2, channels: 2, frames: 10 } },
      'transcode',
    ],
    ['MP3 the parser rejects', { probe: probeOf('mp3', 'mp3', 1), wav: null, mp3: null }, 'transcode'],
    ['Opus in Ogg', { probe: probeOf('ogg', 'opus', 2), wav: null, mp3: null }, 'transcode'],
    ['AAC in MP4', { probe: probeOf('mov,mp4,m4a,3gp,3g2,mj2', 'aac', 1), wav: null, mp3: null }, 'transcode'],
    [
      'raw u-law by extension',
      { probe: probeOf('mulaw', 'pcm_mulaw', 1, { rawHint: rawHintFor('ul') }), wav: null, mp3: null },
      'transcode',
    ],
  ])('%s → %s', (_name, facts, action) => {
    expect(planFor(facts, policy).action).toBe(action);
  });

  it('keeps mono mono and stereo stereo by default, downmixes more than 2 channels to stereo', () => {
    const t = (channels: number) => targetFor(policy, channels).channels;
    expect([t(1), t(2), t(6)]).toEqual([1, 2, 2]);
  });

  it('CHANNELS=mono transcodes compliant stereo to mono, CHANNELS=stereo transcodes compliant mono', () => {
    const mono = planFor(wavInput('pcm_s16le', wav(1, 16, 2)), { ...policy, channels: 'mono' });
    expect(mono.action).toBe('transcode');
    expect(mono.action === 'transcode' && mono.target.channels).toBe(1);
    const stereo = planFor(wavInput('pcm_s16le', wav(1, 16, 1)), { ...policy, channels: 'stereo' });
    expect(stereo.action === 'transcode' && stereo.target.channels).toBe(2);
    expect(planFor(wavInput('pcm_s16le', wav(1, 16, 1)), { ...policy, channels: 'mono' }).action).toBe('pass-through');
  });

  it('targets the configured codec and container', () => {
    const facts: InputFacts = { probe: probeOf('ogg', 'opus', 1), wav: null, mp3: null };
    const codecs = (['pcm16', 'pcm8', 'alaw', 'mulaw', 'mp3'] as const).map((format) => {
      const plan = planFor(facts, { ...policy, format });
      return plan.action === 'transcode' ? `${plan.target.container}/${plan.target.codec}` : plan.action;
    });
    expect(codecs).toEqual(['wav/pcm_s16le', 'wav/pcm_u8', 'wav/pcm_alaw', 'wav/pcm_mulaw', 'mp3/libmp3lame']);
  });
});

describe('argsFor', () => {
  const target = targetFor({ ...policy, format: 'alaw' }, 2);
  const io = {
    input: '/tmp/job/in-attachment',
    output: '/tmp/job/out.wav',
    hint: undefined,
    maxDurationSeconds: 43200,
    maxOutputBytes: 5e8,
  };

  it('restricts protocols and demuxers, maps only the first audio stream, caps duration and size', () => {
    const args = argsFor(target, io);
    const after = (flag: string) => args[args.indexOf(flag) + 1];
    expect(after('-protocol_whitelist')).toBe('file');
    expect(after('-format_whitelist')).not.toMatch(/\b(hls|concat|avi|image2|lavfi|dash)\b/);
    expect(after('-i')).toBe('file:/tmp/job/in-attachment');
    expect(after('-map')).toBe('0:a:0');
    expect(args).toEqual(expect.arrayContaining(['-vn', '-sn', '-dn']));
    expect(after('-t')).toBe('43200');
    expect(after('-fs')).toBe('500000000');
    expect(after('-c:a')).toBe('pcm_alaw');
    expect(args.at(-1)).toBe('file:/tmp/job/out.wav');
    expect(args).not.toContain('-safe');
  });

  it('forces the raw demuxer named by the extension, with its rate', () => {
    const args = argsFor(target, { ...io, hint: rawHintFor('sln16') });
    expect(args.slice(0, 12)).toEqual(
      expect.arrayContaining([
        '-format_whitelist',
        's16le',
        '-f',
        's16le',
        '-sample_rate',
        '16000',
        '-ch_layout',
        'mono',
      ]),
    );
  });

  it('writes an Info tag for MP3 so the encoder delay is known', () => {
    const args = argsFor(targetFor({ ...policy, format: 'mp3', mp3BitrateKbps: 24 }, 1), {
      ...io,
      output: '/tmp/o.mp3',
    });
    expect(args).toEqual(
      expect.arrayContaining(['-c:a', 'libmp3lame', '-b:a', '24k', '-write_xing', '1', '-f', 'mp3']),
    );
  });
});

describe('planFor: real-world headers (issue 10)', () => {
  const reasonsOf = (facts: InputFacts): string => planFor(facts, policy).reasons.join('; ');

  it('names the real format tag and codec of ADPCM and GSM WAVs', () => {
    const ima = reasonsOf(wavInput('adpcm_ima_wav', wav(0x11, 4, 1)));
    expect(ima).toContain('WAV format tag 0x0011 (IMA ADPCM, adpcm_ima_wav)');
    expect(reasonsOf(wavInput('adpcm_ms', wav(0x2, 4, 1)))).toContain('WAV format tag 0x0002 (MS ADPCM, adpcm_ms)');
    expect(reasonsOf(wavInput('gsm_ms', wav(0x31, 0, 1)))).toContain('WAV format tag 0x0031 (GSM 6.10, gsm_ms)');
    expect(reasonsOf(wavInput('gsm_ms', wav(0x31, 0, 1)))).not.toContain('EXTENSIBLE');
  });

  it('trims ADPCM/GSM to a fact chunk that falls in the last block, and ignores one that contradicts the data', () => {
    const ms = wav(0x2, 4, 1, { frames: 20, samplesPerBlock: 500, factSamples: 9876 });
    const plausible = planFor(wavInput('adpcm_ms', ms), policy);
    expect(plausible.action === 'transcode' && plausible.trim).toEqual({ startSample: 0, endSample: 9876 });
    const sndfile = wav(0x11, 4, 2, { frames: 18, samplesPerBlock: 1017, factSamples: 9153 });
    const contradicting = planFor(wavInput('adpcm_ima_wav', sndfile), policy);
    expect(contradicting.action === 'transcode' && contradicting.trim).toBeUndefined();
    expect(contradicting.reasons.join(' ')).toMatch(/contradicts the data .*ignored/);
    const gsm = wav(0x31, 0, 1, { frames: 31, samplesPerBlock: 320, factSamples: 99_999 });
    const beyond = planFor(wavInput('gsm_ms', gsm), policy);
    expect(beyond.action === 'transcode' && beyond.trim).toBeUndefined();
  });

  it('rewrites the header (not the samples) of PCM/G.711 in WAVE_FORMAT_EXTENSIBLE, or with a stale fact chunk', () => {
    const ext = planFor(wavInput('pcm_mulaw', wav(0xfffe, 8, 1, { effectiveFormatTag: 7 })), policy);
    expect(ext).toMatchObject({ action: 'repair-header', rewrite: true });
    expect(ext.reasons[0]).toContain('rewritten as plain format tag 7');
    const sizesOnly = planFor(wavInput('pcm_mulaw', wav(7, 8, 1, { sizesConsistent: false })), policy);
    expect(sizesOnly).toMatchObject({ action: 'repair-header', rewrite: false });
    const stale = wav(7, 8, 1, { sizesConsistent: false, factSamples: 0xffffffff });
    const withFact = planFor(wavInput('pcm_mulaw', stale), policy);
    expect(withFact).toMatchObject({ action: 'repair-header', rewrite: true });
  });

  it('does not pass through a self-contradicting header, nor a rate outside 8000..48000 Hz', () => {
    const badAlign = wav(1, 16, 1, { headerProblems: ['block align 4 (...)'] });
    const blockAlign = planFor(wavInput('pcm_s16le', badAlign), policy);
    expect(blockAlign).toMatchObject({ action: 'repair-header', rewrite: true });
    expect(planFor(wavInput('pcm_s16le', wav(1, 16, 1, { sampleRate: 6000 })), policy).action).toBe('transcode');
    expect(planFor(wavInput('pcm_s16le', wav(1, 16, 1, { sampleRate: 96_000 })), policy).action).toBe('transcode');
  });

  it('removes a flood of ID3v2 tags before an MP3, and forwards one or two', () => {
    const mp3 = (id3v2Tags: number): InputFacts => ({
      probe: probeOf('mp3', 'mp3', 1),
      wav: null,
      mp3: { layer: 3, channels: 1, frames: 10, id3v2Tags },
    });
    expect(planFor(mp3(2), policy).action).toBe('pass-through');
    expect(planFor(mp3(20_000), policy)).toMatchObject({ action: 'repair-header', container: 'mp3' });
  });

  it('cuts decoded samples with atrim and pads to the exact length', () => {
    const io = { input: '/tmp/in', output: '/tmp/o.wav', hint: undefined, maxDurationSeconds: 60, maxOutputBytes: 5e6 };
    const args = argsFor(targetFor(policy, 1), { ...io, trim: { startSample: 80, endSample: 9956 } });
    const filter = 'atrim=start_sample=80:end_sample=9956,asetpts=PTS-STARTPTS,apad=whole_len=9876';
    expect(args).toEqual(expect.arrayContaining(['-af', filter]));
  });
});
