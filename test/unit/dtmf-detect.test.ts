/**
 * The DTMF detector against the receiver thresholds of docs/dtmf.md (ITU-T Q.24 as PBX DSPs use it), on exact
 * synthetic tones: every key, the edge values that must be accepted and those that must be rejected, at the
 * rates the gateway writes (the band-limited copy above 12 kHz).
 */
import { describe, expect, it } from 'vitest';
import { DtmfDetector } from '../../src/media/dtmf-detect.js';
import { addNoise, detectMono, keysOf, toneSequence, type ToneSpec } from '../helpers/dtmf.js';

const ALL = '0123456789*#ABCD';
const RATES = [8000, 16000, 44100, 48000];

function heard(rate: number, tones: readonly ToneSpec[], gapMs: number, noiseSnrDb?: number): string {
  const { samples } = toneSequence(tones, rate, gapMs);
  if (noiseSnrDb !== undefined) addNoise(samples, (tones[0]!.rowDbfs ?? -10) + 3, noiseSnrDb);
  const detector = new DtmfDetector(1, rate, { keepKeys: true });
  return keysOf(detector, detectMono(detector, samples));
}

const each = (spec: Partial<ToneSpec>, ms = 60): ToneSpec[] => [...ALL].map((key) => ({ key, ms, ...spec }));

describe.each(RATES)('DTMF detection at %i Hz', (rate) => {
  it('hears all 16 keys', () => {
    expect(heard(rate, each({}), 60)).toBe(ALL);
  });

  it('accepts 40 ms tones with 40 ms pauses, and the same key pressed four times', () => {
    expect(heard(rate, each({}, 40), 40)).toBe(ALL);
    expect(
      heard(
        rate,
        [...'5555'].map((key) => ({ key, ms: 40 })),
        40,
      ),
    ).toBe('5555');
  });

  it('rejects 20 ms tones', () => {
    expect(heard(rate, each({}, 20), 60)).toBe('');
  });

  it('rejects 26 ms tones, whatever their alignment with the blocks (Q.24: none under 23 ms, all from 40 ms)', () => {
    // 79 ms from one key to the next: each key starts 20 samples further into a block (at 8 kHz) than the last.
    expect(heard(rate, each({}, 26), 53)).toBe('');
  });

  it('accepts ±1.5 % frequency deviation and rejects ±3.5 %', () => {
    expect(heard(rate, each({ deviation: 0.015 }), 50)).toBe(ALL);
    expect(heard(rate, each({ deviation: -0.015 }), 50)).toBe(ALL);
    expect(heard(rate, each({ deviation: 0.035 }), 50)).toBe('');
    expect(heard(rate, each({ deviation: -0.035 }), 50)).toBe('');
  });

  it('accepts 8 dB normal and 4 dB reverse twist, rejects 14 dB and 10 dB', () => {
    expect(heard(rate, each({ twistDb: -8 }), 50)).toBe(ALL);
    expect(heard(rate, each({ twistDb: 4 }), 50)).toBe(ALL);
    expect(heard(rate, each({ twistDb: -14 }), 50)).toBe('');
    expect(heard(rate, each({ twistDb: 10 }), 50)).toBe('');
  });

  it('accepts −36 dBm0 per tone (−39.1 dBFS) and rejects −55 dBm0', () => {
    expect(heard(rate, each({ rowDbfs: -39.1 }), 50)).toBe(ALL);
    expect(heard(rate, each({ rowDbfs: -58.1 }), 50)).toBe('');
  });

  it('accepts tones with white noise 15 dB below them', () => {
    expect(heard(rate, each({ rowDbfs: -20 }), 50, 15)).toBe(ALL);
  });
});

describe('DTMF steadiness between blocks', () => {
  it('takes no sound that fills two whole blocks but not the windows around and between them', () => {
    // 25.5 ms starting on a block boundary: two whole blocks hold the key (a two-hit rule takes it, as it took a
    // vowel in the speech corpus whose harmonics passed through a row and a column frequency); the windows
    // straddling the blocks' edges do not, so the key holds in 3 windows half a block apart, not 4.
    const { samples } = toneSequence([{ key: '5', ms: 25.5 }], 8000, 60, 12.75);
    const detector = new DtmfDetector(1, 8000);
    expect(detectMono(detector, samples)).toEqual([]);
    const longer = toneSequence([{ key: '5', ms: 38.25 }], 8000, 60, 12.75).samples;
    expect(detectMono(new DtmfDetector(1, 8000), longer)).toHaveLength(1);
  });
});

describe('DTMF tones as reported', () => {
  it('gives the channel, where (within a block) and how loud, and never a key', () => {
    const rate = 8000;
    const { samples, starts } = toneSequence([{ key: '7', ms: 100, rowDbfs: -20 }], rate, 50);
    // Stereo: the tone on the right channel only.
    const stereo = new Float32Array(samples.length * 2);
    for (let i = 0; i < samples.length; i++) stereo[2 * i + 1] = samples[i]!;
    const detector = new DtmfDetector(2, rate);
    detector.push(stereo);
    const [tone, ...rest] = detector.finish();
    expect(rest).toEqual([]);
    expect(Object.keys(tone!).sort()).toEqual(['channel', 'endFrame', 'levelDbfs', 'startFrame']);
    expect(tone!.channel).toBe(1);
    expect(Math.abs(tone!.startFrame - starts[0]!)).toBeLessThanOrEqual(102);
    expect(Math.abs(tone!.endFrame - (starts[0]! + 800))).toBeLessThanOrEqual(102);
    // Two tones at −20 dBFS each: −17 dBFS together.
    expect(tone!.levelDbfs).toBeCloseTo(-17, 0);
    expect(detector.keyOf(tone!)).toBeUndefined();
  });
});
