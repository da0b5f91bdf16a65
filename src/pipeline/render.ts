/**
 * The one runner for render jobs (media/render-job.ts): the time budget, the
 * run, the measurement of every output from the output itself, the decode
 * cap and the empty-output check. Each of those exists here only.
 */
import { stat } from 'node:fs/promises';
import { badAudio, GatewayError } from '../errors.js';
import { FfmpegError, runFfmpeg } from '../media/ffmpeg-run.js';
import type { ProbeResult } from '../media/ffprobe.js';
import { readMp3Info } from '../media/mp3.js';
import type { Container } from '../media/plan.js';
import { argsFor, type RenderJob } from '../media/render-job.js';
import { readWavInfo, wavDurationSeconds } from '../media/wav.js';
import type { MediaTools, OutputFormatInfo, PrepareLimits } from './prepared.js';
import { inPart, transcodeError } from './render-errors.js';

/** What an output is made from: its probe names it in messages and sets its decode cap; `part` names a leg. */
export interface RenderSource {
  probe: ProbeResult;
  part?: string | undefined;
}

/** The tools and the only policy a render needs (its time budget and decode cap), apart from the job itself. */
export interface RenderContext extends MediaTools {
  limits: PrepareLimits;
  /** One per output (two legs: two), or one for all of them. */
  from: readonly RenderSource[];
  signal?: AbortSignal | undefined;
  /** Told when ffmpeg starts (to read its outputs while they are written, e.g. analysis-follow.ts). */
  follow?: FollowOutput | undefined;
}

/** The outputs ffmpeg is writing, and how it ended (true: success; never rejects). */
export type FollowOutput = (outputs: readonly string[], exited: Promise<boolean>) => void;

export interface Measured {
  durationSeconds: number;
  samples: number;
  format: OutputFormatInfo;
}

export interface Rendered extends Measured {
  path: string;
  bytes: number;
  container: Container;
}

export interface RenderResult {
  outputs: Rendered[];
  /** The ffmpeg run alone. */
  processMs: number;
  measureMs: number;
}

/** Wall-clock budget for one ffmpeg run: scaled to the audio's length, capped by configuration. */
export function budgetMs(
  limits: Pick<PrepareLimits, 'processTimeoutMs' | 'maxDurationSeconds'>,
  seconds?: number,
): number {
  // Telephony audio renders hundreds of times faster than real time; 1/10 of real time plus a minute is generous.
  return Math.min(limits.processTimeoutMs, 60_000 + (seconds ?? limits.maxDurationSeconds) * 100);
}

/**
 * How much audio a decode may produce. Headers can lie (a tiny FLAC that
 * claims 5 s and decodes to 100 h of silence): the decode stops at a
 * generous multiple of what the header declares, and at the configured limit.
 * The slack covers formats whose duration ffprobe only estimates (VBR MP3
 * without a Xing header, ADTS AAC).
 */
export function decodeCapSeconds(probed: ProbeResult, maxDurationSeconds: number): number {
  const declared = probed.durationSeconds;
  if (declared === undefined || declared <= 0) return maxDurationSeconds;
  return Math.min(maxDurationSeconds, Math.ceil(Math.max(declared * 4, declared + 600)));
}

/** The ffmpeg failure behind a render error, for callers to whom a failed render is not fatal. */
const failures = new WeakMap<object, FfmpegError>();
export const failedRun = (error: unknown): FfmpegError | undefined =>
  error instanceof Object ? failures.get(error) : undefined;

/**
 * For a step whose failure is not the recording's fault (analysis, level
 * measurement): rethrows what must fail the request (an abort, a refusal),
 * else returns why it failed, for the report's warning.
 */
export function nonFatal(error: unknown, signal: AbortSignal | undefined): string {
  if (signal?.aborted || (error instanceof GatewayError && !failedRun(error))) throw error;
  const cause = failedRun(error) ?? error;
  return cause instanceof Error ? cause.message : String(cause);
}

interface Produced {
  path: string;
  container: Container;
  /** Set for a decode of a client's file, whose true length is only known once decoded. */
  decodeCap?: number | undefined;
}

function producedBy(job: RenderJob): Produced[] {
  switch (job.kind) {
    case 'transcode':
    case 'route':
      return [{ path: job.output.path, container: job.target.container, decodeCap: job.output.maxDurationSeconds }];
    case 'decode-legs':
      return job.legs.map((l) => ({ path: l.output.path, container: 'wav', decodeCap: l.output.maxDurationSeconds }));
    case 'merge-legs':
    case 'level':
      return [{ path: job.output.path, container: job.target.container }];
    case 'decode-for-analysis':
      return [{ path: job.output, container: 'wav' }];
  }
}

/** The length the time budget is scaled to: the longest input, or our own output's known length. */
function budgetSeconds(
  job: RenderJob,
  produced: readonly Produced[],
  from: readonly RenderSource[],
): number | undefined {
  if (job.kind === 'decode-for-analysis') return job.seconds;
  if (job.kind === 'merge-legs' || job.kind === 'level') return job.output.maxDurationSeconds;
  return Math.max(...produced.map((p, i) => sourceOf(from, i)?.probe.durationSeconds ?? p.decodeCap ?? 0));
}

const sourceOf = (from: readonly RenderSource[], i: number): RenderSource | undefined =>
  from[Math.min(i, from.length - 1)];

/** Runs a job and measures what it wrote; throws the client's error when the output is not usable audio. */
export async function render(job: RenderJob, ctx: RenderContext): Promise<RenderResult> {
  const produced = producedBy(job);
  const t0 = performance.now();
  try {
    const running = runFfmpeg(ctx.bins, argsFor(job), {
      timeoutMs: budgetMs(ctx.limits, budgetSeconds(job, produced, ctx.from)),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    ctx.follow?.(
      produced.map((p) => p.path),
      running.then(
        () => true,
        () => false,
      ),
    );
    await running;
  } catch (error) {
    const failure = transcodeError(error, ctx.from[0]?.probe);
    if (error instanceof FfmpegError) failures.set(failure, error);
    throw produced.length === 1 ? inPart(failure, ctx.from[0]?.part) : failure;
  }
  const t1 = performance.now();
  const outputs: Rendered[] = [];
  for (const [i, p] of produced.entries()) {
    const source = sourceOf(ctx.from, i);
    try {
      const measured = await measure(p.path, p.container);
      if (p.decodeCap !== undefined && source) checkDecodeCap(measured, p.decodeCap, source.probe, ctx.limits);
      if (source) checkHoldsAudio(measured, source.probe);
      const { size } = await stat(p.path);
      outputs.push({ ...measured, path: p.path, bytes: size, container: p.container });
    } catch (error) {
      throw inPart(error, source?.part);
    }
  }
  return { outputs, processMs: t1 - t0, measureMs: performance.now() - t1 };
}

/** The empty-output check: a file that decodes to nothing is refused. */
export function checkHoldsAudio(measured: Measured, probed: ProbeResult): void {
  if (measured.samples > 0) return;
  throw badAudio(`The file (${probed.formatName}, ${probed.audio.codecName}) holds no audio samples`);
}

/** The decode cap check: a decode that ran into its cap was stopped, so the file is longer than allowed. */
function checkDecodeCap(measured: Measured, cap: number, probed: ProbeResult, limits: PrepareLimits): void {
  if (measured.durationSeconds < cap - 0.05) return;
  const declared = describeSeconds(probed.durationSeconds);
  throw badAudio(
    cap < limits.maxDurationSeconds
      ? `The audio decodes to far more than the ${declared} its header declares: refused (decoding stopped at ${cap} s)`
      : `The audio decodes to more than the limit of ${limits.maxDurationSeconds} seconds ` +
          `(its header said ${declared})`,
  );
}

export function describeSeconds(seconds: number | undefined): string {
  return seconds === undefined ? 'no duration' : `${seconds.toFixed(1)} s`;
}

const WAV_CODEC_NAMES: Record<number, string> = { 1: 'pcm', 6: 'pcm_alaw', 7: 'pcm_mulaw' };

/** Exact duration from the output: WAV frames / rate; MP3 frames × samples per frame − delay − padding. */
export async function measure(file: string, container: Container): Promise<Measured> {
  if (container === 'wav') {
    const info = await readWavInfo(file);
    if (!info) {
      throw new GatewayError('INTERNAL', 'The converted WAV cannot be read back');
    }
    const pcm = `pcm_${info.bitsPerSample === 8 ? 'u8' : 's16le'}`;
    return {
      durationSeconds: wavDurationSeconds(info),
      samples: info.frames,
      format: {
        container,
        codec: info.formatTag === 1 ? pcm : (WAV_CODEC_NAMES[info.formatTag] ?? `tag ${info.formatTag}`),
        sampleRate: info.sampleRate,
        channels: info.channels,
        bitsPerSample: info.bitsPerSample,
      },
    };
  }
  const info = await readMp3Info(file);
  if (!info) throw badAudio('The MP3 cannot be read: no valid MPEG audio frames');
  return {
    durationSeconds: info.durationSeconds,
    samples: info.totalSamples,
    format: { container, codec: 'mp3', sampleRate: info.sampleRate, channels: info.channels, bitsPerSample: undefined },
  };
}
