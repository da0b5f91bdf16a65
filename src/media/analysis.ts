/**
 * Stereo analysis of an output, computed from its PCM in one streaming pass
 * of a LevelMeter (level-meter.ts; memory does not grow with the file's length):
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
import { DEFAULT_WINDOW_MS, HISTOGRAM_FLOOR_DB, LevelMeter, type RawLevels } from './level-meter.js';
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
  windowMs: DEFAULT_WINDOW_MS,
  floorDbfs: -50,
  relativeDb: 30,
  referencePercentile: 0.95,
  silentShare: 0.005,
  fakeCorrelation: 0.98,
  fakeMaxLevelDifferenceDb: 6,
};

const dbOfAmplitude = (a: number): number | null => (a > 0 ? round1(20 * Math.log10(a)) : null);
const dbOfPower = (p: number): number | null => (p > 0 ? round1(10 * Math.log10(p)) : null);
const round1 = (x: number): number => Math.round(x * 10) / 10;

interface ChannelAnalysis {
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
