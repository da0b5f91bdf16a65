/**
 * Everything ffmpeg renders, as one union of plain values, and the one pure
 * function that turns a job into argv (table-tested, no I/O). Running a job,
 * its time budget and the checks on its output are pipeline/render.ts's.
 * Model: PeerTube's packages/ffmpeg (one options union, builders by type).
 *
 * Every input keeps the same restrictions: `-protocol_whitelist file`, a
 * `-format_whitelist` (a raw hint's, or the one demuxer of our own files),
 * `file:` paths, audio only, no metadata; every output has a duration cap
 * (-t) and a size cap (-fs).
 */
import type { ChannelRoute } from './channels.js';
import { fileArg, inputOptions } from './ffmpeg-run.js';
import type { RawHint } from './formats.js';
import { channelsOf, mergeGraph, routeFilter, type MergeSpec, type Mix } from './merge.js';
import { bytesPerSecond, trimFilter, type Container, type SampleTrim, type Target } from './plan.js';

/** A file a client sent, with the raw hint its probe found (headerless formats). */
export interface SourceFile {
  path: string;
  hint: RawHint | undefined;
}

/** Where an output goes and how far it may grow. */
export interface RenderOutput {
  path: string;
  /** Output duration cap (-t): headers can lie about the input's length. */
  maxDurationSeconds: number;
  /** Output size cap (-fs). */
  maxOutputBytes: number;
}

export interface LegDecode {
  input: SourceFile;
  output: RenderOutput;
  /** Only [start, end) of its samples (a container's exact length: ADPCM/GSM `fact`, Speex granule). */
  trim?: SampleTrim | undefined;
}

export type RenderJob =
  /** One file to the target (a transcode plan), keeping only [start, end) of its samples when trimmed. */
  | { kind: 'transcode'; input: SourceFile; target: Target; trim?: SampleTrim | undefined; output: RenderOutput }
  /** One file whose channels are picked (swapped, or selected from more than two), trimmed like a transcode. */
  | {
      kind: 'route';
      input: SourceFile;
      route: ChannelRoute;
      mix: Mix;
      target: Target;
      trim?: SampleTrim | undefined;
      output: RenderOutput;
    }
  /** Each leg to mono 16-bit PCM WAV at the output rate (two legs: one process, two outputs). */
  | { kind: 'decode-legs'; legs: readonly LegDecode[]; sampleRate: number }
  /** Two decoded legs, delayed and padded, to the output (media/merge.ts's graph). */
  | { kind: 'merge-legs'; merge: MergeSpec; target: Target; output: RenderOutput }
  /** Our own output through the level graph (media/level.ts), to the same format. */
  | { kind: 'level'; input: string; inputContainer: Container; graph: string; target: Target; output: RenderOutput }
  /** An MP3 output decoded to PCM WAV to be analysed; `seconds` is its length (for the time budget). */
  | { kind: 'decode-for-analysis'; input: string; output: string; seconds: number };

const AUDIO_ONLY = ['-map', '0:a:0', '-vn', '-sn', '-dn'];
const NO_METADATA = ['-map_metadata', '-1', '-map_chapters', '-1'];
/** Header room on top of the audio's own bytes. */
const HEADER_SLACK_BYTES = 1024 * 1024;

/** The caps of an output whose length is not known before decoding: the decode cap in seconds. */
export function decodeOutput(file: string, target: Target, capSeconds: number): RenderOutput {
  // Room for the whole allowed duration plus headers; a lying header cannot fill the disk.
  const maxOutputBytes = Math.ceil(bytesPerSecond(target) * capSeconds * 1.02 + HEADER_SLACK_BYTES);
  return { path: file, maxDurationSeconds: capSeconds, maxOutputBytes };
}

/** The caps of an output whose length is known (our own files): a second of slack. */
export function knownOutput(file: string, target: Target, seconds: number): RenderOutput {
  return {
    path: file,
    maxDurationSeconds: Math.ceil(seconds) + 1,
    maxOutputBytes: bytesPerSecond(target) * (seconds + 1) * 1.02 + HEADER_SLACK_BYTES,
  };
}

/** The target of a decoded leg: mono 16-bit PCM at the output rate. */
export function legTarget(sampleRate: number): Target {
  return { format: 'pcm16', container: 'wav', codec: 'pcm_s16le', sampleRate, channels: 1, mp3BitrateKbps: undefined };
}

/** The ffmpeg argv (after the global options) for a job. */
export function argsFor(job: RenderJob): string[] {
  switch (job.kind) {
    case 'transcode':
      return [
        ...sourceInput(job.input),
        ...AUDIO_ONLY,
        ...NO_METADATA,
        ...(job.trim ? ['-af', trimFilter(job.trim)] : []),
        ...encode(job.target, job.output, true),
      ];
    case 'route':
      checkMix(job.mix, job.target);
      return [
        ...sourceInput(job.input),
        ...AUDIO_ONLY,
        ...NO_METADATA,
        '-af',
        (job.trim ? `${trimFilter(job.trim)},` : '') + routeFilter(job.route, job.mix),
        ...encode(job.target, job.output, false),
      ];
    case 'decode-legs': {
      const target = legTarget(job.sampleRate);
      return [
        ...job.legs.flatMap((l) => sourceInput(l.input)),
        ...job.legs.flatMap((l, i) => [
          ...['-map', `${i}:a:0`, '-vn', '-sn', '-dn'],
          ...NO_METADATA,
          ...(l.trim ? ['-af', trimFilter(l.trim)] : []),
          ...encode(target, l.output, true),
        ]),
      ];
    }
    case 'merge-legs':
      checkMix(job.merge.mix, job.target);
      return [
        ...ownInput(job.merge.local.wav, 'wav'),
        ...ownInput(job.merge.remote.wav, 'wav'),
        ...graphArgs(mergeGraph(job.merge)),
        ...encode(job.target, job.output, false),
      ];
    case 'level':
      return [
        ...ownInput(job.input, job.inputContainer),
        ...graphArgs(job.graph),
        ...encode(job.target, job.output, false),
      ];
    case 'decode-for-analysis':
      return [
        ...ownInput(job.input, 'mp3'),
        '-map',
        '0:a:0',
        '-c:a',
        'pcm_s16le',
        '-f',
        'wav',
        '-y',
        fileArg(job.output),
      ];
  }
}

function sourceInput(input: SourceFile): string[] {
  return [...inputOptions(input.hint), '-i', fileArg(input.path)];
}

/** Our own files: still only the file protocol and the one demuxer they need. */
function ownInput(file: string, container: Container): string[] {
  return ['-protocol_whitelist', 'file', '-format_whitelist', container, '-f', container, '-i', fileArg(file)];
}

function graphArgs(graph: string): string[] {
  return ['-filter_complex', graph, '-map', '[out]', ...NO_METADATA];
}

/** Caps, rate, codec and the output file; `-ac` when the channel count is not set by a filter. */
function encode(target: Target, output: RenderOutput, setChannels: boolean): string[] {
  const args = ['-t', String(output.maxDurationSeconds)];
  if (setChannels) args.push('-ac', String(target.channels));
  args.push('-ar', String(target.sampleRate), '-c:a', target.codec);
  if (target.container === 'mp3') {
    args.push('-b:a', `${target.mp3BitrateKbps ?? 32}k`, '-write_xing', '1', '-id3v2_version', '0');
  }
  const size = String(Math.ceil(output.maxOutputBytes));
  args.push('-fs', size, '-bitexact', '-f', target.container, '-y', fileArg(output.path));
  return args;
}

function checkMix(mix: Mix, target: Target): void {
  const channels = channelsOf(mix);
  if (target.channels !== channels) throw new RangeError(`a ${mix} mix needs a ${channels}-channel target`);
}
