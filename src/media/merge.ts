/**
 * The ffmpeg argv for stereo preparation, as pure data (table-tested):
 *
 * - two legs: each leg is first decoded on its own to mono PCM at the output
 *   rate (`legArgs`), so its exact length in samples is known from its WAV
 *   header; then `mergeArgs` delays each leg by its offset, pads both with
 *   silence to the same length (`apad=whole_len`) and joins them, local on
 *   the left. `amerge`/`join` stop at the shortest input, which is why the
 *   length must be known beforehand; `amix` is not used because it mixes.
 * - one file: `routeArgs` picks the input channels for the local and the
 *   remote party with `pan` (swap, or channels 3 and 4 of a 4-channel file).
 *
 * Every input keeps the restrictions of plan.ts: `-protocol_whitelist file`,
 * a `-format_whitelist`, raw hints per input, `file:` paths, audio only.
 */
import type { RawHint } from './formats.js';
import { fileArg, inputOptions } from './ffmpeg.js';
import type { Target } from './plan.js';
import type { ChannelRoute } from './channels.js';

export interface RenderIo {
  output: string;
  /** Output duration cap (-t). */
  maxDurationSeconds: number;
  /** Output size cap (-fs). */
  maxOutputBytes: number;
}

/**
 * What the output carries: both parties on their own channel, or one mono
 * channel. `mono-sum` keeps each party's level (two legs for CHANNELS=mono);
 * `mono-average` keeps the level of near-identical channels (fake stereo
 * collapsed to mono).
 */
export type Mix = 'stereo' | 'mono-sum' | 'mono-average';

export const channelsOf = (mix: Mix): 1 | 2 => (mix === 'stereo' ? 2 : 1);

const AUDIO_ONLY = ['-map', '0:a:0', '-vn', '-sn', '-dn'];
const NO_METADATA = ['-map_metadata', '-1', '-map_chapters', '-1'];

/** Our own intermediate WAV files: still only the file protocol and the wav demuxer. */
function ownWavInput(file: string): string[] {
  return ['-protocol_whitelist', 'file', '-format_whitelist', 'wav', '-f', 'wav', '-i', fileArg(file)];
}

function encodeArgs(target: Target, io: RenderIo): string[] {
  const args = ['-t', String(io.maxDurationSeconds), '-ar', String(target.sampleRate), '-c:a', target.codec];
  if (target.container === 'mp3') {
    args.push('-b:a', `${target.mp3BitrateKbps ?? 32}k`, '-write_xing', '1', '-id3v2_version', '0');
  }
  args.push('-fs', String(Math.ceil(io.maxOutputBytes)), '-bitexact', '-f', target.container, '-y', fileArg(io.output));
  return args;
}

export interface LegInput {
  path: string;
  hint: RawHint | undefined;
}

/** One leg to mono 16-bit PCM WAV at the output rate (a stereo leg is downmixed). */
export function legArgs(leg: LegInput, sampleRate: number, io: RenderIo): string[] {
  return [...legInputArgs(leg), ...legOutputArgs(0, sampleRate, io)];
}

/** Both legs in one ffmpeg run (one process instead of two), each to its own WAV. */
export function legsArgs(legs: readonly [LegInput, LegInput], sampleRate: number, ios: readonly [RenderIo, RenderIo]): string[] {
  return [...legInputArgs(legs[0]), ...legInputArgs(legs[1]), ...legOutputArgs(0, sampleRate, ios[0]), ...legOutputArgs(1, sampleRate, ios[1])];
}

function legInputArgs(leg: LegInput): string[] {
  return [...inputOptions(leg.hint), '-i', fileArg(leg.path)];
}

function legOutputArgs(input: number, sampleRate: number, io: RenderIo): string[] {
  return [
    '-map',
    `${input}:a:0`,
    '-vn',
    '-sn',
    '-dn',
    ...NO_METADATA,
    '-t',
    String(io.maxDurationSeconds),
    '-ac',
    '1',
    '-ar',
    String(sampleRate),
    '-c:a',
    'pcm_s16le',
    '-fs',
    String(Math.ceil(io.maxOutputBytes)),
    '-bitexact',
    '-f',
    'wav',
    '-y',
    fileArg(io.output),
  ];
}

export interface MergeLeg {
  /** A mono WAV made by legArgs. */
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
    if (!Number.isInteger(delay) || delay < 0) throw new RangeError(`delaySamples must be a non-negative integer, got ${delay}`);
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

/** Phase 2: the two prepared legs to the output. */
export function mergeArgs(spec: MergeSpec, target: Target, io: RenderIo): string[] {
  if (target.channels !== channelsOf(spec.mix)) throw new RangeError(`a ${spec.mix} mix needs a ${channelsOf(spec.mix)}-channel target`);
  return [
    ...ownWavInput(spec.local.wav),
    ...ownWavInput(spec.remote.wav),
    '-filter_complex',
    mergeGraph(spec),
    '-map',
    '[out]',
    ...NO_METADATA,
    ...encodeArgs(target, io),
  ];
}

/** The `pan` filter that puts the routed input channels in the output (left = local, right = remote). */
export function routeFilter(route: ChannelRoute, mix: Mix): string {
  for (const c of [route.local, route.remote]) {
    if (!Number.isInteger(c) || c < 0 || c > 63) throw new RangeError(`channel index out of range: ${c}`);
  }
  if (mix === 'stereo') return `pan=stereo|c0=c${route.local}|c1=c${route.remote}`;
  return downmix(mix, route.local, route.remote).slice(1);
}

/** One file whose channels are picked (swapped, or selected from more than two). */
export function routeArgs(input: LegInput, route: ChannelRoute, mix: Mix, target: Target, io: RenderIo): string[] {
  if (target.channels !== channelsOf(mix)) throw new RangeError(`a ${mix} mix needs a ${channelsOf(mix)}-channel target`);
  return [
    ...inputOptions(input.hint),
    '-i',
    fileArg(input.path),
    ...AUDIO_ONLY,
    ...NO_METADATA,
    '-af',
    routeFilter(route, mix),
    ...encodeArgs(target, io),
  ];
}
