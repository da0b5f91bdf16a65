/**
 * DTMF test signals made in TypeScript (exact frequencies, levels, twist,
 * deviation, noise) and the keys a detector heard. Levels are dBFS of a sine
 * (a full-scale sine is 0 dBFS); −36 dBm0 is −39.1 dBFS in G.711.
 */
import { COL_HZ, KEYS, ROW_HZ, type DtmfDetector, type DtmfTone } from '../../src/media/dtmf-detect.js';

export interface ToneSpec {
  key: string;
  /** Row tone level, dBFS. */
  rowDbfs?: number;
  /** Column tone level relative to the row tone (negative: normal twist). */
  twistDb?: number;
  /** Relative frequency offset of both tones (0.015 = +1.5 %). */
  deviation?: number;
  ms: number;
}

export function frequenciesOf(key: string): [number, number] {
  const row = KEYS.findIndex((r) => r.includes(key));
  if (row < 0) throw new Error(`no key ${key}`);
  return [ROW_HZ[row]!, COL_HZ[KEYS[row]!.indexOf(key)]!];
}

/** A deterministic pseudo-random source (tests must be repeatable). */
export function noise(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 4294967296) * 2 - 1;
  };
}

/** Tones separated by `gapMs` of silence, with `leadMs` before the first one; mono floats. */
export function toneSequence(
  tones: readonly ToneSpec[],
  rate: number,
  gapMs: number,
  leadMs = 100,
): { samples: Float32Array; starts: number[] } {
  const total = Math.round(((leadMs + tones.reduce((t, x) => t + x.ms + gapMs, 0) + 100) * rate) / 1000);
  const samples = new Float32Array(total);
  const starts: number[] = [];
  let at = Math.round((leadMs * rate) / 1000);
  for (const t of tones) {
    const [fr, fc] = frequenciesOf(t.key);
    const dev = 1 + (t.deviation ?? 0);
    const ar = 10 ** ((t.rowDbfs ?? -10) / 20);
    const ac = ar * 10 ** ((t.twistDb ?? 0) / 20);
    const n = Math.round((t.ms * rate) / 1000);
    starts.push(at);
    for (let i = 0; i < n; i++) {
      const time = i / rate;
      samples[at + i] = ar * Math.sin(2 * Math.PI * fr * dev * time) + ac * Math.sin(2 * Math.PI * fc * dev * time + 1);
    }
    at += n + Math.round((gapMs * rate) / 1000);
  }
  return { samples, starts };
}

/** Adds white noise at `snrDb` below the power of `signalDbfs` (a sine level). */
export function addNoise(samples: Float32Array, signalDbfs: number, snrDb: number, seed = 1): void {
  const power = 10 ** (signalDbfs / 10) / 2;
  // Uniform in [−1, 1] has variance 1/3.
  const scale = Math.sqrt((power / 10 ** (snrDb / 10)) * 3);
  const rnd = noise(seed);
  for (let i = 0; i < samples.length; i++) samples[i]! += scale * rnd();
}

/** Runs a detector over mono floats in blocks of odd sizes (as a stream delivers them). */
export function detectMono(detector: DtmfDetector, samples: Float32Array): DtmfTone[] {
  for (let i = 0; i < samples.length; i += 4093) {
    const part = samples.subarray(i, Math.min(samples.length, i + 4093));
    detector.push(part, part.length);
  }
  return detector.finish();
}

export function keysOf(detector: DtmfDetector, tones: readonly DtmfTone[]): string {
  return tones.map((t) => detector.keyOf(t) ?? '?').join('');
}

/**
 * The peak (dBFS) of `samples` high-passed above 2.5 kHz (8 kHz audio; a 101-tap windowed-sinc FIR) over frames
 * [from, to): DTMF and the 1 kHz mask tone have nothing there, a click has.
 */
export function highPassPeakDbfs(samples: Float32Array | Float64Array, from: number, to: number): number {
  const taps = 101;
  const mid = (taps - 1) / 2;
  const fc = 2500 / 8000;
  const h = Array.from({ length: taps }, (_, i) => {
    const t = i - mid;
    const lowPass = t === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * t) / (Math.PI * t);
    const blackman =
      0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (taps - 1));
    return (t === 0 ? 1 : 0) - lowPass * blackman;
  });
  let peak = 0;
  for (let n = Math.max(mid, from); n < Math.min(samples.length - mid, to); n++) {
    let y = 0;
    for (let k = 0; k < taps; k++) y += h[k]! * samples[n + mid - k]!;
    peak = Math.max(peak, Math.abs(y));
  }
  return peak > 0 ? 20 * Math.log10(peak) : -Infinity;
}
