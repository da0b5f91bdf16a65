/**
 * probe → plan → pass through / repair / transcode → measure.
 * Turns one received audio file into audio Imagicle accepts, with its exact
 * duration measured from the output itself.
 */
import { constants, copyFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { badAudio } from '../errors.js';
import { isProbeFailure, probe, type ProbeResult } from '../media/ffprobe.js';
import {
  blockCodecTrim,
  CONTENT_TYPE,
  planFor,
  targetFor,
  type Container,
  type Plan,
  type SampleTrim,
} from '../media/plan.js';
import { decodeOutput } from '../media/render-job.js';
import { readWavInfo, type WavInfo } from '../media/wav.js';
import { repairWavSizes, rewritePlainWav } from '../media/wav-write.js';
import { readSpeexLength, speexTrim } from '../media/speex.js';
import { readMp3Info, writeWithoutLeadingTags, type Mp3Info } from '../media/mp3.js';
import { formatIsoDuration } from '../imagicle/duration.js';
import { sanitiseFilename } from '../imagicle/multipart.js';
import { probeWithoutFfprobe } from '../media/fast-probe.js';
import { currentChildLimits } from '../media/process.js';
import { boundOutput, expectedOutputBytes } from './bounds.js';
import type { AudioInput, PrepareDeps, PreparedAudio, PrepareLimits } from './prepared.js';
import { checkHoldsAudio, decodeCapSeconds, describeSeconds, measure, render } from './render.js';
import type { FollowOutput, Measured, RenderResult } from './render.js';
import { needsTooMuchMemory, transcodeError } from './render-errors.js';
import { declaredLength, truncatedError, truncationOf } from './truncation.js';

/** Above this no recorder writes, and ffmpeg refuses to open the file. */
const MAX_PLAUSIBLE_RATE = 768_000;

/** probe → plan, without touching the file: what prepareAudio would do (also `import --dry-run`). */
export async function inspectAudio(
  input: AudioInput,
  deps: PrepareDeps,
  signal?: AbortSignal,
): Promise<{ probed: ProbeResult; wav: WavInfo | null; mp3: Mp3Info | null; plan: Plan }> {
  // Common WAV, MP3 and Ogg Opus are read by our own parsers (fast-probe.ts); everything else by ffprobe.
  const fast = deps.forceTranscode ? undefined : await probeWithoutFfprobe(input.path, input.extension);
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

export async function prepareAudio(
  input: AudioInput,
  workDir: string,
  deps: PrepareDeps,
  signal?: AbortSignal,
  follow?: FollowOutput,
): Promise<PreparedAudio> {
  const t0 = performance.now();
  const { probed, wav, mp3, plan } = await inspectAudio(input, deps, signal);
  const t1 = performance.now();

  let outputPath = input.path;
  let run: RenderResult | undefined;
  if (plan.action === 'repair-header' && plan.container === 'mp3' && mp3) {
    outputPath = path.join(workDir, 'out.mp3');
    await writeWithoutLeadingTags(input.path, mp3, outputPath);
  } else if (plan.action === 'repair-header' && wav) {
    if (plan.rewrite) {
      outputPath = path.join(workDir, 'out.wav');
      await rewritePlainWav(input.path, wav, outputPath);
    } else {
      // Repaired in place, unless the file is not ours: then its copy is.
      if (input.readOnly) {
        outputPath = path.join(workDir, `in.${plan.container}`);
        await copyFile(input.path, outputPath, constants.COPYFILE_FICLONE);
      }
      await repairWavSizes(outputPath, wav);
    }
  } else if (plan.action === 'transcode') {
    const cap = decodeCapSeconds(probed, deps.limits.maxDurationSeconds);
    const output = decodeOutput(path.join(workDir, `out.${plan.target.container}`), plan.target, cap);
    // Before decoding: what the output will weigh, from the declared length (the decode cap when none is declared).
    await boundOutput(deps.bounds, {
      inputBytes: (await stat(input.path)).size,
      outputBytes: expectedOutputBytes(plan.target, probed.durationSeconds ?? cap),
      worstCaseBytes: output.maxOutputBytes,
      what: 'the converted audio',
    });
    const source = { path: input.path, hint: probed.rawHint };
    const job = { kind: 'transcode', input: source, target: plan.target, trim: plan.trim, output } as const;
    run = await render(job, { bins: deps.bins, limits: deps.limits, from: [{ probe: probed }], signal, follow });
    outputPath = output.path;
  }
  const t2 = performance.now();

  const container: Container = plan.action === 'transcode' ? plan.target.container : plan.container;
  const rendered = run?.outputs[0];
  const measured: Measured = rendered ?? (await measure(outputPath, container));
  if (!rendered) checkHoldsAudio(measured, probed);
  const size = rendered?.bytes ?? (await stat(outputPath)).size;
  // What decoded against what the container declares: a cut file is reported (TRUNCATED=reject: refused).
  const truncated = truncationOf(await declaredLength(input.path, probed, wav, mp3), measured.durationSeconds);
  if (truncated && deps.truncated === 'reject') throw truncatedError(truncated);
  const t3 = performance.now();
  const measureMs = (run?.measureMs ?? 0) + (t3 - t2);
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
    timings: { probeMs: t1 - t0, processMs: t2 - t1 - (run?.measureMs ?? 0), measureMs },
    ...(truncated ? { truncated } : {}),
  };
}

/** Speex in Ogg: the decoder's lookahead is cut and the end trimmed to the last granule position. */
async function withExactLength(plan: Plan, inputPath: string, probed: ProbeResult): Promise<Plan> {
  if (plan.action !== 'transcode' || plan.trim) return plan;
  const speex = await speexLengthOf(inputPath, probed);
  return speex ? { ...plan, trim: speex.trim, reasons: [...plan.reasons, speex.reason] } : plan;
}

async function speexLengthOf(inputPath: string, probed: ProbeResult): Promise<ExactLength | undefined> {
  if (probed.formatName !== 'ogg' || probed.audio.codecName !== 'speex') return undefined;
  const length = await readSpeexLength(inputPath);
  if (length === null || length.sampleRate !== probed.audio.sampleRate) return undefined;
  return {
    trim: speexTrim(length),
    reason:
      `Speex: the decoder's ${length.lookahead}-sample lookahead removed, ` +
      `trimmed to the granule position (${length.granule} samples)`,
  };
}

export interface ExactLength {
  trim: SampleTrim;
  reason: string;
}

/**
 * The samples a source really holds when its container says so and the decoder would give more: ADPCM and GSM
 * in WAV (the `fact` chunk; the last block's padding), Speex in Ogg (lookahead and granule). What a transcode's
 * plan applies (planFor, withExactLength), for the stereo step's own renders (swapped or selected channels,
 * each of two legs).
 */
export async function exactLengthOf(inputPath: string, probed: ProbeResult): Promise<ExactLength | undefined> {
  if (probed.formatName === 'wav') {
    const wav = await readWavInfo(inputPath);
    const block = wav ? blockCodecTrim(wav) : undefined;
    return block?.trim && block.reason ? { trim: block.trim, reason: block.reason } : undefined;
  }
  return speexLengthOf(inputPath, probed);
}

/**
 * The probe of a call's file or leg that is rendered by the stereo step (swapped, selected, merged): Ogg Opus and
 * WAV whose sizes agree with the file are read by our own parsers, anything else by ffprobe. (A WAV with wrong
 * sizes or an MP3 keeps ffprobe's duration here, which the legs' alignment has always used.)
 */
export async function probeSource(input: AudioInput, deps: PrepareDeps, signal?: AbortSignal): Promise<ProbeResult> {
  const fast = await probeWithoutFfprobe(input.path, input.extension);
  const sure = fast && (fast.probe.formatName === 'ogg' || (fast.wav !== null && fast.wav.sizesConsistent));
  return sure ? fast.probe : probeOrFail(input, deps, signal);
}

async function probeOrFail(input: AudioInput, deps: PrepareDeps, signal?: AbortSignal): Promise<ProbeResult> {
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
