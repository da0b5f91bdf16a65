/**
 * The filter graphs for stereo preparation, as pure data (table-tested); the
 * argv around them is render-job.ts's:
 *
 * - two legs: each leg is first decoded on its own to mono PCM at the output
 *   rate (a `decode-legs` job), so its exact length in samples is known from
 *   its WAV header; then a `merge-legs` job delays each leg by its offset,
 *   pads both with silence to the same length (`apad=whole_len`) and joins
 *   them, local on the left. `amerge`/`join` stop at the shortest input,
 *   which is why the length must be known beforehand; `amix` is not used
 *   because it mixes.
 * - one file: a `route` job picks the input channels for the local and the
 *   remote party with `pan` (swap, or channels 3 and 4 of a 4-channel file).
 */
import type { ChannelRoute } from './channels.js';

/**
 * What the output carries: both parties on their own channel, or one mono
 * channel. `mono-sum` keeps each party's level (two legs for CHANNELS=mono);
 * `mono-average` keeps the level of near-identical channels (fake stereo
 * collapsed to mono).
 */
export type Mix = 'stereo' | 'mono-sum' | 'mono-average';

export const channelsOf = (mix: Mix): 1 | 2 => (mix === 'stereo' ? 2 : 1);

interface MergeLeg {
  /** A mono WAV made by a decode-legs job. */
  wav: string;
  /** Silence before the leg starts, in samples at the output rate. */
  delaySamples: number;
}

export interface MergeSpec {
  local: MergeLeg;
  remote: MergeLeg;
  /** Length of the output in samples: the longer leg, offsets included. */
  totalSamples: number;
  mix: Mix;
}

/** Samples of silence for an offset in milliseconds at a rate (rounded to the nearest sample). */
export function offsetSamples(offsetMs: number, sampleRate: number): number {
  return Math.round((offsetMs * sampleRate) / 1000);
}

/** The output length: every leg after its offset, padded to the longest. */
export function mergedLength(legs: ReadonlyArray<{ samples: number; delaySamples: number }>): number {
  return legs.reduce((longest, leg) => Math.max(longest, leg.delaySamples + leg.samples), 0);
}

/** The filter graph: input 0 is the local leg (left), input 1 the remote leg (right). */
export function mergeGraph(spec: MergeSpec): string {
  const n = spec.totalSamples;
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`totalSamples must be a positive integer, got ${n}`);
  const leg = (input: number, delay: number, label: string): string => {
    if (!Number.isInteger(delay) || delay < 0)
      throw new RangeError(`delaySamples must be a non-negative integer, got ${delay}`);
    const steps = ['aformat=sample_fmts=s16:channel_layouts=mono'];
    if (delay > 0) steps.push(`adelay=delays=${delay}S:all=1`);
    steps.push(`apad=whole_len=${n}`);
    return `[${input}:a]${steps.join(',')}[${label}]`;
  };
  const join = '[local][remote]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR';
  return `${leg(0, spec.local.delaySamples, 'local')};${leg(1, spec.remote.delaySamples, 'remote')};${join}${downmix(spec.mix, 0, 1)}[out]`;
}

/** `,pan=…` to reduce two channels to one, or nothing for stereo. */
function downmix(mix: Mix, a: number, b: number): string {
  if (mix === 'mono-sum') return `,pan=mono|c0=c${a}+c${b}`;
  if (mix === 'mono-average') return `,pan=mono|c0=0.5*c${a}+0.5*c${b}`;
  return '';
}

/** The `pan` filter that puts the routed input channels in the output (left = local, right = remote). */
export function routeFilter(route: ChannelRoute, mix: Mix): string {
  for (const c of [route.local, route.remote]) {
    if (!Number.isInteger(c) || c < 0 || c > 63) throw new RangeError(`channel index out of range: ${c}`);
  }
  if (mix === 'stereo') return `pan=stereo|c0=c${route.local}|c1=c${route.remote}`;
  return downmix(mix, route.local, route.remote).slice(1);
}
