/**
 * The measures behind level normalization (docs/level.md), per channel, in
 * one streaming pass with memory that does not grow with the file:
 *
 * - DC offset: the mean of the samples;
 * - speech level: the power mean of the 20 ms windows that pass a two-stage
 *   gate (an absolute gate at −70 dBFS, then a relative gate 10 dB below the
 *   power mean of what passes it, repeated until it settles): the gating of
 *   ITU-R BS.1770 on unweighted 20 ms windows, so the unit stays dBFS RMS;
 * - sample peak and true peak (4× oversampled, as BS.1770 Annex 2 asks);
 * - the rare-peak level: the true-peak level that at most RARE_PEAK_SHARE
 *   of the oversampled values exceed (what a limiter would have to catch).
 *
 * Every measure is taken after subtracting `offsets` (the DC to remove), so
 * the levels are those of the channel once its DC is gone. The stereo
 * analysis's LevelMeter (level-meter.ts) runs over the same samples, for its verdicts
 * (silent channel, silent recording).
 */
import { classify, type StereoAnalysis } from './analysis.js';
import { LevelMeter } from './level-meter.js';
import { streamWavSamples } from './wav-samples.js';

/** The gate of BS.1770 (−70 absolute, −10 relative), on 20 ms windows of plain RMS. */
const ABSOLUTE_GATE_DBFS = -70;
const RELATIVE_GATE_DB = -10;
/**
 * BS.1770 applies the relative gate once. Once is not enough when long
 * near-silent stretches pass the absolute gate (a DC residue, line hiss):
 * their number pulls the mean, hence the gate, down and lets quiet
 * fragments in. Repeating it until it settles makes the level independent
 * of how much near-silence surrounds the speech.
 */
const RELATIVE_GATE_PASSES = 20;
const WINDOW_MS = 20;
/** Share of the oversampled values a limiter may have to catch: about 0.6 values per second at 8 kHz. */
const RARE_PEAK_SHARE = 2e-5;

const OVERSAMPLE = 4;
const TAPS = 16;
const HALF = TAPS / 2;

/** Windowed-sinc interpolators for the positions 1/4, 2/4 and 3/4 between two samples (Hann window, unity DC gain). */
const PHASES: Float64Array[] = Array.from({ length: OVERSAMPLE - 1 }, (_, p) => {
  const frac = (p + 1) / OVERSAMPLE;
  const taps = new Float64Array(TAPS);
  let sum = 0;
  for (let j = 0; j < TAPS; j++) {
    // Tap j weighs sample n − (TAPS − 1) + j; the interpolated point lies at n − HALF + frac.
    const t = j - (TAPS - 1) + HALF - frac;
    const sinc = t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t);
    const window = 0.5 * (1 + Math.cos((Math.PI * t) / HALF));
    taps[j] = sinc * window;
    sum += taps[j]!;
  }
  for (let j = 0; j < TAPS; j++) taps[j]! /= sum;
  return taps;
});

/** Window levels and true-peak values in 0.1 dB bins, from −120 and −60 dBFS. */
const WINDOW_FLOOR_DB = -120;
const WINDOW_BINS = 1201;
const PEAK_FLOOR_DB = -60;
const PEAK_BINS = 700;
const PEAK_FLOOR_AMPLITUDE = 10 ** (PEAK_FLOOR_DB / 20);

export interface ChannelLevelMeasure {
  /** Mean of the samples before `offsets` were subtracted (full scale ±1). */
  dc: number;
  /** Gated speech level (dBFS RMS); null when no window passes the absolute gate. */
  speechDbfs: number | null;
  /** Share of windows in the gate. */
  gatedShare: number;
  samplePeakDbfs: number | null;
  truePeakDbfs: number | null;
  /** The true-peak level exceeded by at most RARE_PEAK_SHARE of the oversampled values. */
  rarePeakDbfs: number | null;
  /** Oversampled values per 0.1 dB true-peak bin from −60 dBFS (for valuesAbove). */
  peakHistogram: number[];
}

/** How many 4×-oversampled values lie above a level (0.1 dB resolution). */
export function valuesAbove(m: ChannelLevelMeasure, db: number): number {
  let count = 0;
  for (let i = Math.max(0, Math.ceil((db - PEAK_FLOOR_DB) * 10)); i < m.peakHistogram.length; i++)
    count += m.peakHistogram[i]!;
  return count;
}

export interface LevelSurvey {
  sampleRate: number;
  frames: number;
  channels: ChannelLevelMeasure[];
  /** The stereo analysis of the same samples (verdicts: silent channel, silent recording). */
  analysis: StereoAnalysis;
}

const toDb = (amplitude: number): number | null => (amplitude > 0 ? 20 * Math.log10(amplitude) : null);

class ChannelSurvey {
  private sum = 0;
  private windowSquares = 0;
  private samplePeak = 0;
  private truePeak = 0;
  private values = 0;
  private readonly windowCounts = new Float64Array(WINDOW_BINS);
  private readonly windowPower = new Float64Array(WINDOW_BINS);
  private readonly peakCounts = new Float64Array(PEAK_BINS);
  /** The last TAPS samples, written twice so that any TAPS in a row are contiguous. */
  private readonly history = new Float64Array(2 * TAPS);
  private at = 0;

  constructor(private readonly offset: number) {}

  push(x: number, closesWindow: number): void {
    this.sum += x;
    const y = x - this.offset;
    this.windowSquares += y * y;
    const a = Math.abs(y);
    if (a > this.samplePeak) this.samplePeak = a;
    this.countValue(a);
    const h = this.history;
    h[this.at] = y;
    h[this.at + TAPS] = y;
    this.at = (this.at + 1) % TAPS;
    // h[at … at + TAPS − 1] now holds the last TAPS samples, oldest first.
    for (const taps of PHASES) {
      let v = 0;
      for (let j = 0; j < TAPS; j++) v += taps[j]! * h[this.at + j]!;
      this.countValue(Math.abs(v));
    }
    if (closesWindow > 0) this.closeWindow(closesWindow);
  }

  private countValue(a: number): void {
    this.values++;
    if (a > this.truePeak) this.truePeak = a;
    if (a <= PEAK_FLOOR_AMPLITUDE) return;
    const bin = Math.min(PEAK_BINS - 1, Math.floor((20 * Math.log10(a) - PEAK_FLOOR_DB) * 10));
    this.peakCounts[bin]!++;
  }

  closeWindow(length: number): void {
    const meanSquare = this.windowSquares / length;
    const db = meanSquare > 0 ? 10 * Math.log10(meanSquare) : -Infinity;
    const bin = Math.max(0, Math.min(WINDOW_BINS - 1, Math.floor((db - WINDOW_FLOOR_DB) * 10)));
    this.windowCounts[bin]!++;
    this.windowPower[bin]! += meanSquare;
    this.windowSquares = 0;
  }

  result(frames: number, windows: number): ChannelLevelMeasure {
    const gated = (fromDb: number): { power: number; count: number } => {
      let power = 0;
      let count = 0;
      for (let i = Math.max(0, Math.ceil((fromDb - WINDOW_FLOOR_DB) * 10)); i < WINDOW_BINS; i++) {
        power += this.windowPower[i]!;
        count += this.windowCounts[i]!;
      }
      return { power, count };
    };
    let pass = gated(ABSOLUTE_GATE_DBFS);
    let speechDbfs: number | null = null;
    let gatedShare = 0;
    if (pass.count > 0 && pass.power > 0) {
      // The relative gate, repeated until it settles (see RELATIVE_GATE_PASSES).
      let gate = ABSOLUTE_GATE_DBFS;
      for (let i = 0; i < RELATIVE_GATE_PASSES; i++) {
        const next = Math.max(ABSOLUTE_GATE_DBFS, 10 * Math.log10(pass.power / pass.count) + RELATIVE_GATE_DB);
        if (Math.abs(next - gate) < 0.01) break;
        gate = next;
        pass = gated(gate);
      }
      speechDbfs = 10 * Math.log10(pass.power / pass.count);
      gatedShare = windows > 0 ? pass.count / windows : 0;
    }
    let rare: number | null = null;
    let above = 0;
    for (let i = PEAK_BINS - 1; i >= 0; i--) {
      above += this.peakCounts[i]!;
      if (above > RARE_PEAK_SHARE * this.values) {
        rare = PEAK_FLOOR_DB + (i + 1) / 10;
        break;
      }
    }
    const truePeakDbfs = toDb(this.truePeak);
    return {
      dc: frames > 0 ? this.sum / frames : 0,
      speechDbfs,
      gatedShare,
      samplePeakDbfs: toDb(this.samplePeak),
      truePeakDbfs,
      // Fewer values above the floor than the share: the rare peaks are the true peak itself.
      rarePeakDbfs: rare === null ? truePeakDbfs : Math.min(rare, truePeakDbfs ?? rare),
      peakHistogram: Array.from(this.peakCounts),
    };
  }
}

/** Surveys a WAV file (any format analysis.ts reads), each channel with its offset subtracted. */
export async function surveyWav(file: string, offsets?: readonly number[], signal?: AbortSignal): Promise<LevelSurvey> {
  let channels: ChannelSurvey[] = [];
  let meter: LevelMeter | undefined;
  let windowFrames = 1;
  let inWindow = 0;
  let windows = 0;
  let shifted = new Float32Array(0);
  const format = await streamWavSamples(
    file,
    (f) => {
      channels = Array.from({ length: f.channels }, (_, c) => new ChannelSurvey(offsets?.[c] ?? 0));
      meter = new LevelMeter(f.channels, f.sampleRate, WINDOW_MS);
      windowFrames = Math.max(1, Math.round((f.sampleRate * WINDOW_MS) / 1000));
    },
    (samples, frames) => {
      const n = channels.length;
      if (shifted.length < frames * n) shifted = new Float32Array(frames * n);
      for (let f = 0; f < frames; f++) {
        const closes = ++inWindow === windowFrames ? inWindow : 0;
        for (let c = 0; c < n; c++) {
          const x = samples[f * n + c]!;
          channels[c]!.push(x, closes);
          shifted[f * n + c] = x - (offsets?.[c] ?? 0);
        }
        if (closes) {
          inWindow = 0;
          windows++;
        }
      }
      meter!.push(shifted, frames);
    },
    signal,
  );
  if (inWindow > 0) {
    for (const c of channels) c.closeWindow(inWindow);
    windows++;
  }
  return {
    sampleRate: format.sampleRate,
    frames: format.frames,
    channels: channels.map((c) => c.result(format.frames, windows)),
    analysis: classify(meter!.result()),
  };
}
