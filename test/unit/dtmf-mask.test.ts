/** Which samples a mask replaces, and how: guard, clamping, merging, raised-cosine edges, nothing else touched. */
import { describe, expect, it } from 'vitest';
import { keptShare, maskSamples, maskSpans, MASK_TONE_DBFS } from '../../src/media/dtmf-mask.js';
import { highPassPeakDbfs } from '../helpers/dtmf.js';

const tone = (channel: number, startFrame: number, endFrame: number) => ({
  channel,
  startFrame,
  endFrame,
  levelDbfs: -10,
});

describe('maskSpans', () => {
  it('widens each tone by the guard, clamps to the audio and merges overlaps per channel only', () => {
    const spans = maskSpans(
      [tone(1, 100, 500), tone(1, 700, 900), tone(0, 5000, 5400), tone(1, 7950, 7990)],
      8000,
      8000,
      20,
    );
    // 20 ms at 8 kHz = 160 frames: 100..500 and 700..900 overlap once widened.
    expect(spans).toEqual([
      { channel: 1, startFrame: 0, endFrame: 1060 },
      { channel: 0, startFrame: 4840, endFrame: 5560 },
      { channel: 1, startFrame: 7790, endFrame: 8000 },
    ]);
  });
});

describe('keptShare', () => {
  const span = { channel: 0, startFrame: 1000, endFrame: 2000 };
  it('is 1 outside, 0 inside and falls and rises as a raised cosine over the edges', () => {
    expect(keptShare(span, 999, 40)).toBe(1);
    expect(keptShare(span, 2000, 40)).toBe(1);
    expect(keptShare(span, 1500, 40)).toBe(0);
    expect(keptShare(span, 1040, 40)).toBe(0);
    const falling = Array.from({ length: 40 }, (_, i) => keptShare(span, 1000 + i, 40));
    const rising = Array.from({ length: 40 }, (_, i) => keptShare(span, 1999 - i, 40));
    expect(falling).toEqual(rising);
    for (let i = 1; i < 40; i++) expect(falling[i]!).toBeLessThan(falling[i - 1]!);
    expect(falling[0]!).toBeGreaterThan(0.99);
    expect(falling[39]!).toBeLessThan(0.01);
  });
});

describe('maskSamples', () => {
  it('silences the span and leaves every other sample as it was', () => {
    const samples = Float64Array.from({ length: 4000 }, (_, i) => Math.sin(i / 3) * 0.5);
    const before = Float64Array.from(samples);
    const span = { channel: 0, startFrame: 1200, endFrame: 2400 };
    // The block starts at frame 1000 of the recording.
    maskSamples(samples, 1000, span, 8000, 'silence');
    for (let i = 0; i < 200; i++) expect(samples[i]).toBe(before[i]);
    for (let i = 1400; i < 4000; i++) expect(samples[i]).toBe(before[i]);
    for (let i = 240; i < 1360; i++) expect(Math.abs(samples[i]!)).toBe(0);
  });

  it('puts a 1 kHz tone at −30 dBFS in place of the key with `tone`', () => {
    const samples = new Float64Array(8000).fill(0.3);
    maskSamples(samples, 0, { channel: 0, startFrame: 0, endFrame: 8000 }, 8000, 'tone');
    const middle = samples.subarray(400, 7600);
    const peak = Math.max(...middle.map(Math.abs));
    expect(20 * Math.log10(peak)).toBeCloseTo(MASK_TONE_DBFS, 1);
    // 1 kHz at 8 kHz: a period of 8 samples.
    expect(middle[0]).toBeCloseTo(middle[8]!, 9);
  });
});

describe('mask edges', () => {
  it('leave no click above −50 dBFS over a loud low voice (a hard cut leaves one above −40 dBFS)', () => {
    // A 200 Hz "voice" at −6 dBFS that goes on through the mask: the worst case for an edge.
    const voice = () =>
      Float64Array.from({ length: 8000 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 200 * i) / 8000 + 0.3));
    const span = { channel: 0, startFrame: 2003, endFrame: 5011 };
    for (const kind of ['silence', 'tone'] as const) {
      const masked = voice();
      maskSamples(masked, 0, span, 8000, kind);
      for (const edge of [span.startFrame, span.endFrame]) {
        expect(highPassPeakDbfs(masked, edge - 160, edge + 160), `${kind} at ${edge}`).toBeLessThan(-50);
      }
    }
    const cut = voice();
    cut.fill(0, span.startFrame, span.endFrame);
    expect(highPassPeakDbfs(cut, span.startFrame - 160, span.startFrame + 160)).toBeGreaterThan(-40);
  });
});
