/**
 * What level normalization reports per channel (pipeline/level.ts): types,
 * and the measures as the report rounds them.
 */
import type { ChannelLevelMeasure } from '../media/level-survey.js';
import type { LevelMode, LevelOutcome } from '../media/level.js';

export interface LevelLevels {
  speechDbfs: number | null;
  samplePeakDbfs: number | null;
  truePeakDbfs: number | null;
  dcOffset: number;
}

export interface LevelChannelReport {
  channel: 'left' | 'right' | 'mono';
  party?: 'local' | 'remote' | undefined;
  outcome: LevelOutcome;
  why: string;
  /** The gain applied (0: level left as it is). */
  gainDb: number;
  neededGainDb: number | null;
  dcRemoved: boolean;
  before: LevelLevels;
  /** Measured on the output; the same as before when the file was not rendered. */
  after: LevelLevels;
  limiter: {
    /** The channel went through the limiter (the gain lifts some peaks over the ceiling). */
    acted: boolean;
    /** 4×-oversampled values the gain alone would have put over LEVEL_MAX_PEAK_DBFS. */
    valuesOverCeiling: number;
  };
}

export interface LevelReport {
  mode: LevelMode;
  /** LEVEL, or `level` in the request. */
  decidedBy: string;
  targetDbfs: number;
  maxPeakDbfs: number;
  maxGainDb: number;
  action: 'normalized' | 'unchanged';
  channels: LevelChannelReport[];
  warnings: string[];
  measureMs: number;
  renderMs: number;
  /** True when the gateway wrote a new output: a later re-encode must start from it. */
  rendered: boolean;
}

export const round1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
export const round5 = (x: number): number => Math.round(x * 1e5) / 1e5;

export function levelsOf(m: ChannelLevelMeasure, dcRemoved = 0): LevelLevels {
  return {
    speechDbfs: round1(m.speechDbfs),
    samplePeakDbfs: round1(m.samplePeakDbfs),
    truePeakDbfs: round1(m.truePeakDbfs),
    dcOffset: round5(m.dc - dcRemoved),
  };
}

export function channelNames(n: number): Array<Pick<LevelChannelReport, 'channel' | 'party'>> {
  if (n === 1) return [{ channel: 'mono' }];
  return [
    { channel: 'left', party: 'local' },
    { channel: 'right', party: 'remote' },
  ];
}
