/**
 * The stereo meter's fast path (LevelMeter.pushStereo) must give exactly what
 * the general per-channel loop gives: a 3-channel meter fed the same two
 * channels plus a silent third runs the general loop.
 */
import { describe, expect, it } from 'vitest';
import { LevelMeter } from '../../src/media/level-meter.js';

function signal(frames: number, seed: number): Float32Array {
  const out = new Float32Array(frames * 2);
  let state = seed;
  for (let f = 0; f < frames; f++) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    const noise = state / 2 ** 31 - 0.5;
    out[f * 2] = 0.3 * Math.sin(f / 7) + 0.1 * noise;
    out[f * 2 + 1] = f % 5000 < 2500 ? 0.5 * noise : 0;
  }
  return out;
}

describe('LevelMeter stereo fast path', () => {
  it('equals the general loop, chunk boundaries inside windows included', () => {
    const rate = 8000;
    const stereo = signal(rate * 3 + 77, 11);
    const fast = new LevelMeter(2, rate);
    const general = new LevelMeter(3, rate);
    // Odd chunk sizes, so windows (160 frames) straddle the pushes.
    for (let start = 0, k = 0; start < stereo.length / 2; k++) {
      const frames = Math.min(333 + k * 17, stereo.length / 2 - start);
      const chunk = stereo.subarray(start * 2, (start + frames) * 2);
      fast.push(chunk, frames);
      const three = new Float32Array(frames * 3);
      for (let f = 0; f < frames; f++) {
        three[f * 3] = chunk[f * 2]!;
        three[f * 3 + 1] = chunk[f * 2 + 1]!;
      }
      general.push(three, frames);
      start += frames;
    }
    const a = fast.result();
    const b = general.result();
    expect(a.frames).toBe(b.frames);
    expect(a.windows).toBe(b.windows);
    expect(a.crossSum).toBe(b.crossSum);
    expect(a.channels).toEqual(b.channels.slice(0, 2));
    expect(a.channels[1]!.histogram.some((n, i) => i > 0 && n > 0)).toBe(true);
  });
});

describe('LevelMeter 16-bit path', () => {
  it('equals the float path on the same samples (k / 32768 is exact in a float)', () => {
    const rate = 8000;
    const frames = rate * 2 + 123;
    const ints = new Int16Array(frames * 2);
    let state = 5;
    for (let i = 0; i < ints.length; i++) {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      ints[i] = i % 2 === 0 ? Math.round(12_000 * Math.sin(i / 9)) : (state % 65_536) - 32_768;
    }
    const floats = Float32Array.from(ints, (k) => k / 32768);
    const fromInts = new LevelMeter(2, rate);
    const fromFloats = new LevelMeter(2, rate);
    for (let start = 0; start < frames; start += 1000) {
      const end = Math.min(frames, start + 1000);
      fromInts.pushInt16(ints.subarray(start * 2, end * 2));
      fromFloats.push(floats.subarray(start * 2, end * 2));
    }
    expect(fromInts.result()).toEqual(fromFloats.result());
    // The peak of the full-scale negative sample −32768 is exactly 1.
    const edge = new LevelMeter(2, rate);
    edge.pushInt16(Int16Array.from([-32768, 0, 100, -100]));
    expect(edge.result().channels[0]!.peak).toBe(1);
  });
});
