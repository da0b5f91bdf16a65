/**
 * Level normalization per channel, as pure data (table-tested): what to do
 * with each channel given its measures (level-survey.ts), and the ffmpeg argv
 * that does it. See docs/level.md for the why.
 *
 * Per channel: the DC offset is subtracted; one constant gain brings the
 * gated speech level to the target; where that gain would lift the true peak
 * over the limit, an unlinked look-ahead limiter (one per channel, so one
 * party's click never ducks the other) catches those peaks. The gain is
 * first capped so that the limiter has only rare peaks to catch
 * (RARE_PEAK_SHARE): it never becomes a compressor that pumps.
 */
import type { ChannelLevelMeasure } from './level-survey.js';

export const LEVEL_MODES = ['off', 'speech'] as const;
export type LevelMode = (typeof LEVEL_MODES)[number];

export interface LevelPolicy {
  mode: LevelMode;
  /** Gated speech level to reach (dBFS RMS). */
  targetDbfs: number;
  /** True-peak ceiling for what the gain raises (dBFS). */
  maxPeakDbfs: number;
  /** A channel that needs more gain than this is left alone (noise, or a broken leg). */
  maxGainDb: number;
}

export const DEFAULT_LEVEL_POLICY: Readonly<LevelPolicy> = {
  mode: 'off',
  targetDbfs: -20,
  maxPeakDbfs: -1,
  maxGainDb: 30,
};

/** A gain within ±this is not worth a re-encode. */
const GAIN_TOLERANCE_DB = 1;
/** A DC offset at or above this (−60 dBFS) is removed even when the level is left as it is. */
export const DC_THRESHOLD = 0.001;
/**
 * The limiter works on samples; between samples the waveform can rise a
 * little higher. Its threshold sits this far below the true-peak ceiling
 * (measured on speech at 8 kHz: docs/level.md).
 */
export const LIMITER_MARGIN_DB = 0.5;
const LIMITER_ATTACK_MS = 2;
const LIMITER_RELEASE_MS = 50;

/** Why a channel's gain is what it is. */
export type LevelOutcome =
  'applied' | 'applied-capped-by-peak' | 'in-range' | 'silent' | 'over-gain-cap' | 'no-headroom';

export interface ChannelDecision {
  /** Subtracted from every sample (0: no DC fix). */
  dcOffset: number;
  /** 0 when the level is left as it is. */
  gainDb: number;
  /** The gain the speech level alone would have asked for (null: silent). */
  neededGainDb: number | null;
  /** The limiter runs on this channel: the gain lifts some true peaks over the ceiling. */
  limiter: boolean;
  outcome: LevelOutcome;
  /** One sentence for the report and the log. */
  why: string;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const signed = (db: number): string => `${db > 0 ? '+' : ''}${round1(db).toFixed(1)} dB`;

/** What to do with one channel. `silent` is the stereo analysis's verdict on it. */
export function decideChannel(m: ChannelLevelMeasure, silent: boolean, policy: LevelPolicy): ChannelDecision {
  const dcOffset = Math.abs(m.dc) >= DC_THRESHOLD ? m.dc : 0;
  // A DC too small to fix on its own still goes with a gain, which would raise it too.
  const withGain = m.dc;
  const none = (outcome: LevelOutcome, why: string, neededGainDb: number | null): ChannelDecision => ({
    dcOffset,
    gainDb: 0,
    neededGainDb,
    limiter: false,
    outcome,
    why,
  });
  if (silent || m.speechDbfs === null)
    return none('silent', 'no speech on this channel: left as it is, so that it stays silent', null);
  const needed = policy.targetDbfs - m.speechDbfs;
  if (needed > policy.maxGainDb) {
    return none(
      'over-gain-cap',
      `speech at ${round1(m.speechDbfs)} dBFS would need ${signed(needed)}, ` +
        `more than LEVEL_MAX_GAIN_DB=${policy.maxGainDb}: left as it is (noise would be raised with it)`,
      needed,
    );
  }
  if (Math.abs(needed) <= GAIN_TOLERANCE_DB) {
    return none(
      'in-range',
      `speech at ${round1(m.speechDbfs)} dBFS is within ${GAIN_TOLERANCE_DB} dB of the target`,
      needed,
    );
  }
  let gain = needed;
  let capped = false;
  const rare = m.rarePeakDbfs ?? -Infinity;
  if (gain > 0 && rare + gain > policy.maxPeakDbfs) {
    // More than rare peaks would go over the ceiling: raise only as far as the rare-peak level allows.
    gain = Math.max(0, policy.maxPeakDbfs - rare);
    capped = true;
  }
  if (capped && gain <= GAIN_TOLERANCE_DB) {
    return none(
      'no-headroom',
      `speech at ${round1(m.speechDbfs)} dBFS, but its peaks leave no headroom under ${policy.maxPeakDbfs} dBFS`,
      needed,
    );
  }
  const limiter = gain > 0 && (m.truePeakDbfs ?? -Infinity) + gain > policy.maxPeakDbfs;
  const why = capped
    ? `gain ${signed(gain)} instead of ${signed(needed)}: frequent peaks would go over ${policy.maxPeakDbfs} dBFS`
    : `gain ${signed(gain)} to bring speech from ${round1(m.speechDbfs)} to ${policy.targetDbfs} dBFS`;
  return {
    dcOffset: withGain,
    gainDb: gain,
    neededGainDb: needed,
    limiter,
    outcome: capped ? 'applied-capped-by-peak' : 'applied',
    why,
  };
}

/** True when a decision changes the audio at all. */
export const changesAudio = (d: ChannelDecision): boolean => d.gainDb !== 0 || d.dcOffset !== 0;

/** A number for an ffmpeg expression: fixed notation (no exponent), enough digits. */
function num(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  return x.toFixed(9);
}

function limiterFilter(limitDbfs: number): string {
  const limit = Math.min(1, 10 ** (limitDbfs / 20));
  // level=0: no make-up gain; latency=1: the look-ahead delay is compensated, so nothing moves in time.
  return `alimiter=limit=${num(limit)}:attack=${LIMITER_ATTACK_MS}:release=${LIMITER_RELEASE_MS}:level=0:latency=1`;
}

/**
 * The filter graph, input [0:a] to [out]: DC and gain for every channel in
 * one `aeval` (plain arithmetic in double precision), then, when a channel
 * needs it, a limiter per channel (unlinked: one party's click never ducks
 * the other). The other channel then goes through a limiter at full scale,
 * which lets everything a 16-bit sample can hold through: it is there for
 * `join`, which ends with the first input to end, so both channels must
 * carry the same delay compensation to keep the length to the sample.
 */
export function levelGraph(decisions: readonly ChannelDecision[], policy: LevelPolicy): string {
  const n = decisions.length;
  if (n < 1 || n > 2) throw new RangeError(`level normalization handles 1 or 2 channels, got ${n}`);
  const exprs = decisions.map((d, c) => `(val(${c})-(${num(d.dcOffset)}))*${num(10 ** (d.gainDb / 20))}`).join('|');
  const linear = `[0:a]aformat=sample_fmts=dbl,aeval=exprs=${exprs}:channel_layout=${n === 1 ? 'mono' : 'stereo'}`;
  if (!decisions.some((d) => d.limiter)) return `${linear}[out]`;
  const ceiling = policy.maxPeakDbfs - LIMITER_MARGIN_DB;
  if (n === 1) return `${linear},${limiterFilter(ceiling)}[out]`;
  const chain = (c: number) => limiterFilter(decisions[c]!.limiter ? ceiling : 0);
  const split = 'channelsplit=channel_layout=stereo[c0][c1]';
  const join = '[l0][l1]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR[out]';
  return `${linear},${split};[c0]${chain(0)}[l0];[c1]${chain(1)}[l1];${join}`;
}
