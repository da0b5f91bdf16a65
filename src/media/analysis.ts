/**
 * Stereo analysis of an output, computed from its PCM in one streaming pass
 * (memory does not grow with the file's length):
 *
 * - per channel: RMS and peak level (dBFS; 0 dBFS is a full-scale square
 *   wave) and the share of 20 ms windows with speech activity, i.e. louder
 *   than a threshold relative to the loudest channel;
 * - across channels: Pearson correlation of the samples;
 * - verdicts: fake stereo (the channels are near-identical), a silent
 *   channel, an entirely silent recording.
 *
 * The activity measure is an energy gate, not a voice activity detector: it
 * tells "someone talks on this channel about x% of the time", which is
 * what separates a real two-party recording from a broken one.
 */
import {
  int16View,
  readAnalysableWav,
  sampleTag,
  streamWavBlocks,
  streamWavSamples,
  type SampleFormat,
} from './wav-samples.js';

export interface AnalysisThresholds {
  windowMs: number;
  /** A window below this level is never speech. */
  floorDbfs: number;
  /** A window counts as speech when within this many dB of the loudest channel's speech level. */
  relativeDb: number;
  /** The loudest channel's speech level: this percentile of its window levels. */
  referencePercentile: number;
  /** A channel with less speech than this share of windows is called silent. */
  silentShare: number;
  /** Fake stereo: correlation at least this… */
  fakeCorrelation: number;
  /** …and channel levels at most this far apart. */
  fakeMaxLevelDifferenceDb: number;
}

export const DEFAULT_THRESHOLDS: Readonly<AnalysisThresholds> = {
  windowMs: 20,
  floorDbfs: -50,
  relativeDb: 30,
  referencePercentile: 0.95,
  silentShare: 0.005,
  fakeCorrelation: 0.98,
  fakeMaxLevelDifferenceDb: 6,
};

/** Window levels are counted in 1 dB bins from −120 dBFS (bin 0, which also holds digital silence) to 0 dBFS. */
const HISTOGRAM_FLOOR_DB = -120;
const HISTOGRAM_BINS = 121;

export interface ChannelLevels {
  sum: number;
  sumSquares: number;
  peak: number;
  maxWindowMeanSquare: number;
  /** Windows per 1 dB level bin, bin i = [i − 120, i − 119) dBFS. */
  histogram: number[];
}

export interface RawLevels {
  sampleRate: number;
  frames: number;
  windows: number;
  windowMs: number;
  channels: ChannelLevels[];
  /** Σ x0·x1 over all frames (channels 0 and 1). */
  crossSum: number;
}

/** Accumulates levels from interleaved float samples (full scale ±1). */
export class LevelMeter {
  private readonly windowFrames: number;
  private readonly sum: Float64Array;
  private readonly sumSquares: Float64Array;
  private readonly peak: Float64Array;
  private readonly windowSquares: Float64Array;
  private readonly maxWindow: Float64Array;
  private readonly histograms: Uint32Array[];
  private crossSum = 0;
  private frames = 0;
  private inWindow = 0;
  private windows = 0;

  constructor(
    private readonly channelCount: number,
    private readonly sampleRate: number,
    private readonly windowMs = DEFAULT_THRESHOLDS.windowMs,
  ) {
    if (channelCount < 1) throw new RangeError('at least one channel');
    this.windowFrames = Math.max(1, Math.round((sampleRate * windowMs) / 1000));
    this.sum = new Float64Array(channelCount);
    this.sumSquares = new Float64Array(channelCount);
    this.peak = new Float64Array(channelCount);
    this.windowSquares = new Float64Array(channelCount);
    this.maxWindow = new Float64Array(channelCount);
    this.histograms = Array.from({ length: channelCount }, () => new Uint32Array(HISTOGRAM_BINS));
  }

  /** `samples` holds whole interleaved frames. */
  push(samples: Float32Array, frameCount = samples.length / this.channelCount): void {
    if (this.channelCount === 2) {
      this.pushStereo(samples, frameCount, 1);
      return;
    }
    const n = this.channelCount;
    for (let f = 0; f < frameCount; f++) {
      const base = f * n;
      for (let c = 0; c < n; c++) {
        const x = samples[base + c]!;
        this.sum[c]! += x;
        const sq = x * x;
        this.sumSquares[c]! += sq;
        this.windowSquares[c]! += sq;
        // Math.abs, not a sign test: a branch on the sign mispredicts on every other sample of real audio.
        const a = Math.abs(x);
        if (a > this.peak[c]!) this.peak[c] = a;
      }
      if (n >= 2) this.crossSum += samples[base]! * samples[base + 1]!;
      this.frames++;
      if (++this.inWindow === this.windowFrames) this.closeWindow();
    }
  }

  /**
   * 16-bit PCM frames as they are in the file, without a float copy: k / 32768 is exact in a float, so every sum
   * is the one push() would make from the decoded floats.
   */
  pushInt16(samples: Int16Array, frameCount = samples.length / this.channelCount): void {
    if (this.channelCount === 2) {
      this.pushStereo(samples, frameCount, INT16_SCALE);
      return;
    }
    const floats = new Float32Array(frameCount * this.channelCount);
    for (let i = 0; i < floats.length; i++) floats[i] = samples[i]! * INT16_SCALE;
    this.push(floats, frameCount);
  }

  /**
   * The stereo case (every stereo output is analysed) with its running sums in locals: the same additions in the
   * same order as push()'s general loop, so the same results, without a typed-array store per sample.
   * `scale` turns a sample into full scale ±1 (1 for floats, exact for both).
   */
  private pushStereo(s: Float32Array | Int16Array, frameCount: number, scale: number): void {
    let sum0 = this.sum[0]!;
    let sum1 = this.sum[1]!;
    let sq0 = this.sumSquares[0]!;
    let sq1 = this.sumSquares[1]!;
    let win0 = this.windowSquares[0]!;
    let win1 = this.windowSquares[1]!;
    let peak0 = this.peak[0]!;
    let peak1 = this.peak[1]!;
    let cross = this.crossSum;
    let inWindow = this.inWindow;
    const windowFrames = this.windowFrames;
    for (let f = 0, i = 0; f < frameCount; f++, i += 2) {
      const x0 = s[i]! * scale;
      const x1 = s[i + 1]! * scale;
      sum0 += x0;
      sum1 += x1;
      const q0 = x0 * x0;
      const q1 = x1 * x1;
      sq0 += q0;
      sq1 += q1;
      win0 += q0;
      win1 += q1;
      const a0 = Math.abs(x0);
      if (a0 > peak0) peak0 = a0;
      const a1 = Math.abs(x1);
      if (a1 > peak1) peak1 = a1;
      cross += x0 * x1;
      if (++inWindow === windowFrames) {
        this.windowSquares[0] = win0;
        this.windowSquares[1] = win1;
        this.inWindow = inWindow;
        this.closeWindow();
        win0 = 0;
        win1 = 0;
        inWindow = 0;
      }
    }
    this.sum[0] = sum0;
    this.sum[1] = sum1;
    this.sumSquares[0] = sq0;
    this.sumSquares[1] = sq1;
    this.windowSquares[0] = win0;
    this.windowSquares[1] = win1;
    this.peak[0] = peak0;
    this.peak[1] = peak1;
    this.crossSum = cross;
    this.inWindow = inWindow;
    this.frames += frameCount;
  }

  private closeWindow(): void {
    for (let c = 0; c < this.channelCount; c++) {
      const meanSquare = this.windowSquares[c]! / this.inWindow;
      if (meanSquare > this.maxWindow[c]!) this.maxWindow[c] = meanSquare;
      this.histograms[c]![binOf(meanSquare)]!++;
      this.windowSquares[c] = 0;
    }
    this.windows++;
    this.inWindow = 0;
  }

  result(): RawLevels {
    if (this.inWindow > 0) this.closeWindow();
    return {
      sampleRate: this.sampleRate,
      frames: this.frames,
      windows: this.windows,
      windowMs: this.windowMs,
      crossSum: this.crossSum,
      channels: Array.from({ length: this.channelCount }, (_, c) => ({
        sum: this.sum[c]!,
        sumSquares: this.sumSquares[c]!,
        peak: this.peak[c]!,
        maxWindowMeanSquare: this.maxWindow[c]!,
        histogram: Array.from(this.histograms[c]!),
      })),
    };
  }
}

const INT16_SCALE = 1 / 32768;

function binOf(meanSquare: number): number {
  if (!(meanSquare > 0)) return 0;
  const db = 10 * Math.log10(meanSquare);
  return Math.max(0, Math.min(HISTOGRAM_BINS - 1, Math.floor(db - HISTOGRAM_FLOOR_DB)));
}

const dbOfAmplitude = (a: number): number | null => (a > 0 ? round1(20 * Math.log10(a)) : null);
const dbOfPower = (p: number): number | null => (p > 0 ? round1(10 * Math.log10(p)) : null);
const round1 = (x: number): number => Math.round(x * 10) / 10;

export interface ChannelAnalysis {
  /** null: digital silence (−∞ dBFS). */
  rmsDbfs: number | null;
  peakDbfs: number | null;
  /** Share (0–1) of windows with speech activity. */
  speechShare: number;
  silent: boolean;
}

export interface StereoAnalysis {
  seconds: number;
  windowMs: number;
  /** The activity threshold used for every channel (dBFS per window). */
  activityThresholdDbfs: number;
  channels: ChannelAnalysis[];
  /** Pearson correlation of channels 1 and 2; null when one is constant. */
  correlation: number | null;
  /** RMS of channel 1 minus RMS of channel 2, in dB. */
  levelDifferenceDb: number | null;
  fakeStereo: boolean;
  /** 0-based indices of silent channels (empty when the whole recording is silent). */
  silentChannels: number[];
  silentRecording: boolean;
}

/** The window level (dBFS, 1 dB resolution) at or below which `p` of the windows fall. */
function percentileDb(histogram: readonly number[], p: number): number {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return HISTOGRAM_FLOOR_DB;
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= p * total) return i + 1 + HISTOGRAM_FLOOR_DB;
  }
  return 0;
}

function windowsAtOrAbove(histogram: readonly number[], thresholdDb: number): number {
  const first = Math.max(0, Math.ceil(thresholdDb - HISTOGRAM_FLOOR_DB));
  let count = 0;
  for (let i = first; i < histogram.length; i++) count += histogram[i]!;
  return count;
}

/** The verdicts, from levels alone (pure). */
export function classify(raw: RawLevels, t: AnalysisThresholds = DEFAULT_THRESHOLDS): StereoAnalysis {
  const n = Math.max(1, raw.frames);
  const meanSquares = raw.channels.map((c) => c.sumSquares / n);
  const loudest = meanSquares.indexOf(Math.max(...meanSquares));
  const reference = percentileDb(raw.channels[loudest]?.histogram ?? [], t.referencePercentile);
  const threshold = Math.max(t.floorDbfs, reference - t.relativeDb);
  const silentRecording = raw.channels.every(
    (c) => !(c.maxWindowMeanSquare > 0) || 10 * Math.log10(c.maxWindowMeanSquare) < t.floorDbfs,
  );
  const channels = raw.channels.map((c, i) => {
    const speechShare = raw.windows > 0 ? windowsAtOrAbove(c.histogram, threshold) / raw.windows : 0;
    return {
      rmsDbfs: dbOfPower(meanSquares[i]!),
      peakDbfs: dbOfAmplitude(c.peak),
      speechShare: Math.round(speechShare * 1000) / 1000,
      silent: silentRecording || speechShare < t.silentShare,
    };
  });

  let correlation: number | null = null;
  let levelDifferenceDb: number | null = null;
  const [a, b] = raw.channels;
  if (a && b) {
    const meanA = a.sum / n;
    const meanB = b.sum / n;
    const varA = a.sumSquares / n - meanA * meanA;
    const varB = b.sumSquares / n - meanB * meanB;
    // Below ~−100 dBFS a channel is constant for this purpose.
    if (varA > 1e-10 && varB > 1e-10) {
      correlation = Math.max(-1, Math.min(1, (raw.crossSum / n - meanA * meanB) / Math.sqrt(varA * varB)));
      correlation = Math.round(correlation * 10_000) / 10_000;
    }
    const ra = channels[0]!.rmsDbfs;
    const rb = channels[1]!.rmsDbfs;
    if (ra !== null && rb !== null) levelDifferenceDb = round1(ra - rb);
  }
  const silentChannels = silentRecording ? [] : channels.flatMap((c, i) => (c.silent ? [i] : []));
  const fakeStereo =
    channels.length === 2 &&
    !silentRecording &&
    silentChannels.length === 0 &&
    correlation !== null &&
    correlation >= t.fakeCorrelation &&
    levelDifferenceDb !== null &&
    Math.abs(levelDifferenceDb) <= t.fakeMaxLevelDifferenceDb;
  return {
    seconds: raw.frames / raw.sampleRate,
    windowMs: raw.windowMs,
    activityThresholdDbfs: threshold,
    channels,
    correlation,
    levelDifferenceDb,
    fakeStereo,
    silentChannels,
    silentRecording,
  };
}

/** Analyses a WAV file (PCM 8/16/24/32, float 32, A-law, u-law) in one streaming pass. */
export async function analyzeWav(
  file: string,
  thresholds: AnalysisThresholds = DEFAULT_THRESHOLDS,
  signal?: AbortSignal,
): Promise<StereoAnalysis> {
  let meter: LevelMeter | undefined;
  const start = (format: SampleFormat): void => {
    meter = new LevelMeter(format.channels, format.sampleRate, thresholds.windowMs);
  };
  const info = await readAnalysableWav(file);
  if (sampleTag(info) === 1 && info.bitsPerSample === 16) {
    // The common case (every PCM16 output): the file's own 16-bit samples, no float copy.
    await streamWavBlocks(
      file,
      info,
      start,
      (block, frames) => meter!.pushInt16(int16View(block, block.length / 2), frames),
      signal,
    );
  } else {
    await streamWavSamples(file, start, (samples, frames) => meter!.push(samples, frames), signal);
  }
  return classify(meter!.result(), thresholds);
}
