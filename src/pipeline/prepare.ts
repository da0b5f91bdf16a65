/**
 * probe → plan → pass through / repair / transcode → measure.
 * Turns one received audio file into audio Imagicle accepts, with its exact
 * duration measured from the output itself.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { badAudio, GatewayError } from '../errors.js';
import { isProbeFailure, probe, runFfmpeg, FfmpegError, type FfmpegBinaries, type ProbeResult } from '../media/ffmpeg.js';
import { argsFor, bytesPerSecond, CONTENT_TYPE, planFor, targetFor, type Container, type OutputPolicy, type Plan } from '../media/plan.js';
import { readWavInfo, repairWavSizes, rewritePlainWav, wavDurationSeconds, type WavInfo } from '../media/wav.js';
import { readSpeexLength, speexTrim } from '../media/speex.js';
import { readMp3Info, writeWithoutLeadingTags, type Mp3Info } from '../media/mp3.js';
import { formatIsoDuration } from '../media/duration.js';
import { sanitiseFilename } from '../imagicle/multipart.js';
import { probeCompliant } from '../media/fast-probe.js';
import { currentChildLimits } from '../media/process.js';
import { boundOutput, expectedOutputBytes, type OutputBounds } from './bounds.js';
import { insufficientStorage } from './disk.js';
import type { StereoReport } from './stereo.js';
import type { LevelReport } from './level.js';

export interface PrepareLimits {
  maxDurationSeconds: number;
  maxChannelsIn: number;
  processTimeoutMs: number;
}

export interface PrepareDeps {
  bins: FfmpegBinaries;
  output: OutputPolicy;
  limits: PrepareLimits;
  /** Re-encode even compliant input (the `compress` oversize policy), with this reason. */
  forceTranscode?: string | undefined;
  /** Sample rate of headerless VOX input (VOX_SAMPLE_RATE, or the request's inputSampleRate). */
  voxSampleRate?: number | undefined;
  /** MAX_EXPANSION and this job's disk reservation (bounds.ts); none: unbounded (CLI, unit tests). */
  bounds?: OutputBounds | undefined;
}

export interface AudioInput {
  path: string;
  originalName: string | undefined;
  extension: string;
  /** SHA-256 of the file when the intake computed it. */
  sha256?: string | undefined;
}

export interface OutputFormatInfo {
  container: Container;
  codec: string;
  sampleRate: number;
  channels: number;
  bitsPerSample: number | undefined;
}

export interface PreparedAudio {
  path: string;
  bytes: number;
  container: Container;
  contentType: string;
  filename: string;
  durationSeconds: number;
  isoDuration: string;
  /** Samples per channel (WAV) or decoded samples (MP3): the exact measure behind durationSeconds. */
  samples: number;
  format: OutputFormatInfo;
  probe: ProbeResult;
  plan: Plan;
  timings: { probeMs: number; processMs: number; measureMs: number };
  /** Stereo preparation (two legs merged, channels mapped, analysis): see pipeline/stereo.ts. */
  stereo?: StereoReport | undefined;
  /** Level normalization per channel (LEVEL=speech): see pipeline/level.ts. */
  level?: LevelReport | undefined;
}

const WAV_CODEC_NAMES: Record<number, string> = { 1: 'pcm', 6: 'pcm_alaw', 7: 'pcm_mulaw' };
/** Above this no recorder writes, and ffmpeg refuses to open the file. */
const MAX_PLAUSIBLE_RATE = 768_000;

/** probe → plan, without touching the file: what prepareAudio would do (also `import --dry-run`). */
export async function inspectAudio(
  input: AudioInput,
  deps: PrepareDeps,
  signal?: AbortSignal,
): Promise<{ probed: ProbeResult; wav: WavInfo | null; mp3: Mp3Info | null; plan: Plan }> {
  // Compliant WAV/MP3 is read by our own parsers; everything else goes through ffprobe.
  const fast = deps.forceTranscode ? undefined : await probeCompliant(input.path, input.extension);
  const probed = fast?.probe ?? (await probeOrFail(input, deps, signal));
  checkProbeLimits(probed, deps.limits);

  const wav = fast ? fast.wav : probed.formatName === 'wav' ? await readWavInfo(input.path) : null;
  const mp3 = fast ? fast.mp3 : probed.formatName === 'mp3' ? await readMp3Info(input.path) : null;
  // ffmpeg cannot open a WAV whose header claims an impossible rate (0xFFFFFFFF): say so rather than fail decoding.
  if (wav && wav.sampleRate > MAX_PLAUSIBLE_RATE) {
    throw badAudio(
      `The WAV header's sample rate (${wav.sampleRate} Hz) is not a real sample rate: the audio cannot be played`,
    );
  }
  const planned = planFor({ probe: probed, wav, mp3 }, deps.output);
  const plan = await withExactLength(
    deps.forceTranscode
      ? {
          action: 'transcode',
          target: targetFor(deps.output, probed.audio.channels),
          reasons: [deps.forceTranscode],
          trim: planned.action === 'transcode' ? planned.trim : undefined,
        }
      : planned,
    input.path,
    probed,
  );
  return { probed, wav, mp3, plan };
}

export async function prepareAudio(input: AudioInput, workDir: string, deps: PrepareDeps, signal?: AbortSignal): Promise<PreparedAudio> {
  const t0 = performance.now();
  const { probed, wav, mp3, plan } = await inspectAudio(input, deps, signal);
  const t1 = performance.now();

  let outputPath = input.path;
  if (plan.action === 'repair-header' && plan.container === 'mp3' && mp3) {
    outputPath = path.join(workDir, 'out.mp3');
    await writeWithoutLeadingTags(input.path, mp3, outputPath);
  } else if (plan.action === 'repair-header' && wav) {
    if (plan.rewrite) {
      outputPath = path.join(workDir, 'out.wav');
      await rewritePlainWav(input.path, wav, outputPath);
    } else {
      await repairWavSizes(input.path, wav);
    }
  } else if (plan.action === 'transcode') {
    outputPath = path.join(workDir, `out.${plan.target.container}`);
    const maxDuration = decodeCapSeconds(probed, deps.limits.maxDurationSeconds);
    // Room for the whole allowed duration plus headers; a lying header cannot fill the disk.
    const maxOutputBytes = Math.ceil(bytesPerSecond(plan.target) * maxDuration * 1.02 + 1024 * 1024);
    // Before decoding: what the output will weigh, from the declared length (the decode cap when none is declared).
    await boundOutput(deps.bounds, {
      inputBytes: (await stat(input.path)).size,
      outputBytes: expectedOutputBytes(plan.target, probed.durationSeconds ?? maxDuration),
      worstCaseBytes: maxOutputBytes,
      what: 'the converted audio',
    });
    const args = argsFor(plan.target, {
      input: input.path,
      output: outputPath,
      hint: probed.rawHint,
      maxDurationSeconds: maxDuration,
      maxOutputBytes,
      trim: plan.trim,
    });
    try {
      await runFfmpeg(deps.bins, args, { timeoutMs: timeoutFor(probed, deps.limits), ...(signal ? { signal } : {}) });
    } catch (error) {
      throw transcodeError(error, probed);
    }
  }
  const t2 = performance.now();

  const container: Container = plan.action === 'transcode' ? plan.target.container : plan.container;
  const measured = await measure(outputPath, container);
  const cap = decodeCapSeconds(probed, deps.limits.maxDurationSeconds);
  if (plan.action === 'transcode' && measured.durationSeconds >= cap - 0.05) {
    throw badAudio(
      cap < deps.limits.maxDurationSeconds
        ? `The audio decodes to far more than the ${describeSeconds(probed.durationSeconds)} its header declares: refused (decoding stopped at ${cap} s)`
        : `The audio decodes to more than the limit of ${deps.limits.maxDurationSeconds} seconds (its header said ${describeSeconds(probed.durationSeconds)})`,
    );
  }
  if (measured.samples === 0) throw badAudio(`The file (${probed.formatName}, ${probed.audio.codecName}) holds no audio samples`);
  const { size } = await stat(outputPath);
  const t3 = performance.now();
  return {
    path: outputPath,
    bytes: size,
    container,
    contentType: CONTENT_TYPE[container],
    filename: sanitiseFilename(input.originalName, container),
    durationSeconds: measured.durationSeconds,
    isoDuration: formatIsoDuration(measured.durationSeconds),
    samples: measured.samples,
    format: measured.format,
    probe: probed,
    plan,
    timings: { probeMs: t1 - t0, processMs: t2 - t1, measureMs: t3 - t2 },
  };
}

/** Speex in Ogg: the decoder's lookahead is cut and the end trimmed to the last granule position. */
async function withExactLength(plan: Plan, inputPath: string, probed: ProbeResult): Promise<Plan> {
  if (plan.action !== 'transcode' || plan.trim) return plan;
  if (probed.formatName !== 'ogg' || probed.audio.codecName !== 'speex') return plan;
  const length = await readSpeexLength(inputPath);
  if (length === null || length.sampleRate !== probed.audio.sampleRate) return plan;
  return {
    ...plan,
    trim: speexTrim(length),
    reasons: [
      ...plan.reasons,
      `Speex: the decoder's ${length.lookahead}-sample lookahead removed, ` +
        `trimmed to the granule position (${length.granule} samples)`,
    ],
  };
}

export async function probeOrFail(input: AudioInput, deps: PrepareDeps, signal?: AbortSignal): Promise<ProbeResult> {
  const { size } = await stat(input.path);
  if (size === 0) throw badAudio('The attachment is empty');
  let result;
  try {
    result = await probe(deps.bins, input.path, {
      extension: input.extension,
      timeoutMs: 30_000,
      voxSampleRate: deps.voxSampleRate,
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    throw transcodeError(error, undefined);
  }
  if (isProbeFailure(result)) throw badAudio(result.message);
  return result;
}

/** Bytes ffmpeg's demuxers keep per indexed packet (sizeof(AVIndexEntry) on 64-bit, plus the mov sample tables). */
const INDEX_BYTES_PER_PACKET = 24;

/** The memory refusal: the same message whether the estimate or the operating system's ceiling caught it. */
export function needsTooMuchMemory(what: string): GatewayError {
  const mb = Math.round(currentChildLimits().maxMemoryBytes / (1024 * 1024));
  return badAudio(`The file needs more memory than allowed to be read (${what}; the limit is ${mb} MB per process)`);
}

export function checkProbeLimits(probed: ProbeResult, limits: PrepareLimits): void {
  // A few bytes can declare millions of packets (a MOV sample table of one entry): the demuxer indexes them all.
  const packets = probed.audio.declaredPackets;
  const ceiling = currentChildLimits().maxMemoryBytes;
  if (packets !== undefined && ceiling > 0 && packets * INDEX_BYTES_PER_PACKET > ceiling / 2) {
    const indexMb = Math.round((packets * INDEX_BYTES_PER_PACKET) / 1e6);
    throw needsTooMuchMemory(`it declares ${packets} packets, an index of about ${indexMb} MB`);
  }
  if (probed.audio.channels > limits.maxChannelsIn) {
    throw badAudio(`The audio has ${probed.audio.channels} channels; at most ${limits.maxChannelsIn} are accepted`);
  }
  if (probed.durationSeconds !== undefined && probed.durationSeconds > limits.maxDurationSeconds) {
    throw badAudio(
      `The recording lasts ${describeSeconds(probed.durationSeconds)}, more than the limit of ${limits.maxDurationSeconds} seconds`,
    );
  }
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

/** Wall-clock budget for one ffmpeg run: scaled to the input's length, capped by configuration. */
export function timeoutFor(probed: ProbeResult, limits: PrepareLimits): number {
  const seconds = probed.durationSeconds ?? limits.maxDurationSeconds;
  // Transcoding telephony audio runs hundreds of times faster than real time; 1/10 of real time plus a minute is generous.
  return Math.min(limits.processTimeoutMs, 60_000 + seconds * 100);
}

function describeSeconds(seconds: number | undefined): string {
  return seconds === undefined ? 'no duration' : `${seconds.toFixed(1)} s`;
}

export function transcodeError(error: unknown, probed: ProbeResult | undefined): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof FfmpegError) {
    if (error.result.aborted) return new GatewayError('ABORTED', 'The request was aborted', { cause: error });
    if (/No space left on device|Disk quota exceeded/i.test(error.result.stderrTail ?? '')) {
      return insufficientStorage('The gateway ran out of disk space while converting the audio; retry later', error);
    }
    if (error.result.outOfMemory) {
      const err = needsTooMuchMemory(`${error.argv[0]?.split('/').pop() ?? 'ffmpeg'} ran out of memory`);
      Object.assign(err.detail, { argv: error.argv, stderr: error.result.stderrTail });
      return err;
    }
    if (error.result.timedOut) {
      return new GatewayError('PROCESS_TIMEOUT', 'Decoding the audio took too long', {
        cause: error,
        detail: { argv: error.argv, stderr: error.result.stderrTail },
      });
    }
    const what = probed ? `${probed.audio.codecName} in ${probed.formatName}` : 'the file';
    const lastLine = (error.result.stderrTail ?? '').trim().split('\n').pop()?.replace(/file:\S+/g, 'input') ?? '';
    return badAudio(`The audio (${what}) cannot be decoded${lastLine ? `: ${lastLine}` : ''}`, error, {
      argv: error.argv,
      stderr: error.result.stderrTail,
    });
  }
  return new GatewayError('PROCESS_FAILED', 'Audio processing failed', { cause: error });
}

interface Measured {
  durationSeconds: number;
  samples: number;
  format: OutputFormatInfo;
}

/** Exact duration from the output: WAV frames / rate; MP3 frames × samples per frame − delay − padding. */
export async function measure(file: string, container: Container): Promise<Measured> {
  if (container === 'wav') {
    const info: WavInfo | null = await readWavInfo(file);
    if (!info) throw new GatewayError('INTERNAL', 'The converted WAV cannot be read back');
    return {
      durationSeconds: wavDurationSeconds(info),
      samples: info.frames,
      format: {
        container,
        codec: info.formatTag === 1 ? `pcm_${info.bitsPerSample === 8 ? 'u8' : 's16le'}` : (WAV_CODEC_NAMES[info.formatTag] ?? `tag ${info.formatTag}`),
        sampleRate: info.sampleRate,
        channels: info.channels,
        bitsPerSample: info.bitsPerSample,
      },
    };
  }
  const info: Mp3Info | null = await readMp3Info(file);
  if (!info) throw badAudio('The MP3 cannot be read: no valid MPEG audio frames');
  return {
    durationSeconds: info.durationSeconds,
    samples: info.totalSamples,
    format: { container, codec: 'mp3', sampleRate: info.sampleRate, channels: info.channels, bitsPerSample: undefined },
  };
}
