/**
 * Level normalization of a prepared recording (LEVEL=speech, or `level=speech`
 * per request): after the legs are merged, the channels mapped and fake
 * stereo collapsed, before the size limit and splitting. Each channel on its
 * own: DC removed, one constant gain to the speech target, a limiter only
 * for the rare peaks (media/level.ts). Nothing else changes: the duration to
 * the sample, the rate, the codec, the channel order. When no channel needs
 * more than ±1 dB or a DC fix, the file is left exactly as it was (a
 * compliant upload stays byte for byte).
 *
 * docs/level.md explains the measures and the choices.
 */
import { mkdir, rm } from 'node:fs/promises';
import { GatewayError } from '../errors.js';
import path from 'node:path';
import { surveyWav, valuesAbove, type LevelSurvey } from '../media/level-survey.js';
import {
  changesAudio,
  DC_THRESHOLD,
  decideChannel,
  levelGraph,
  LIMITER_MARGIN_DB,
  type LevelMode,
  type LevelPolicy,
} from '../media/level.js';
import { CODEC_OF, CONTENT_TYPE, type Container, type Target } from '../media/plan.js';
import { MP3_BITRATES, type OutputFormat } from '../media/output.js';
import { knownOutput } from '../media/render-job.js';
import { formatIsoDuration } from '../imagicle/duration.js';
import type { PrepareDeps, PreparedAudio } from './prepared.js';
import { channelNames, levelsOf, round1, round5, type LevelChannelReport, type LevelReport } from './level-report.js';
import { failedRun, nonFatal, render, type Rendered } from './render.js';

export interface LevelDeps extends PrepareDeps {
  level: LevelPolicy;
}

const FORMAT_OF_CODEC: Record<string, OutputFormat> = {
  pcm_s16le: 'pcm16',
  pcm_u8: 'pcm8',
  pcm_alaw: 'alaw',
  pcm_mulaw: 'mulaw',
  mp3: 'mp3',
};

/** The output's own format as a target: the level pass (and DTMF masking) keep codec, rate and channels. */
export function sameFormat(prepared: PreparedAudio, deps: PrepareDeps): Target | undefined {
  const format = FORMAT_OF_CODEC[prepared.format.codec];
  const channels = prepared.format.channels;
  if (!format || (channels !== 1 && channels !== 2)) return undefined;
  let mp3BitrateKbps: number | undefined;
  if (format === 'mp3') {
    // Our own MP3: the configured rate. A client's compliant MP3: at least its own average bitrate.
    const own = (prepared.bytes * 8) / Math.max(prepared.durationSeconds, 0.001) / 1000;
    const ceiling = prepared.format.sampleRate < 32_000 ? 160 : 320;
    const wanted =
      prepared.plan.action === 'transcode'
        ? deps.output.mp3BitrateKbps
        : (MP3_BITRATES.find((b) => b >= own) ?? ceiling);
    mp3BitrateKbps = Math.min(wanted, ceiling);
  }
  return {
    format,
    container: prepared.container,
    codec: CODEC_OF[format],
    sampleRate: prepared.format.sampleRate,
    channels,
    mp3BitrateKbps,
  };
}

/** Surveys a WAV directly, an MP3 through a temporary WAV. */
async function survey(
  file: string,
  container: Container,
  seconds: number,
  dir: string,
  deps: PrepareDeps,
  signal: AbortSignal | undefined,
  offsets?: readonly number[],
): Promise<LevelSurvey> {
  if (container === 'wav') return surveyWav(file, offsets, signal);
  const wav = path.join(dir, `decoded-${path.basename(file)}.wav`);
  try {
    const job = { kind: 'decode-for-analysis', input: file, output: wav, seconds } as const;
    await render(job, { bins: deps.bins, limits: deps.limits, from: [], signal });
    return await surveyWav(wav, offsets, signal);
  } finally {
    await rm(wav, { force: true });
  }
}

/** Measures the DC first; only a channel with DC is measured again without it. */
async function measureChannels(
  prepared: PreparedAudio,
  dir: string,
  deps: PrepareDeps,
  signal: AbortSignal | undefined,
): Promise<LevelSurvey> {
  const { path: file, container, durationSeconds: seconds } = prepared;
  const first = await survey(file, container, seconds, dir, deps, signal);
  const offsets = first.channels.map((c) => (Math.abs(c.dc) >= 1e-4 ? c.dc : 0));
  if (offsets.every((o) => o === 0)) return first;
  return survey(file, container, seconds, dir, deps, signal, offsets);
}

/**
 * Applies the level policy to a prepared recording. `mode` is the effective
 * mode (request or LEVEL); `keep` lists the client's own files, which are
 * never removed. `encodeAs`: the format the levelled audio is written in when
 * it is not the prepared one's (a lossless intermediate before MP3: see
 * prepare-call.ts); unset, the prepared format is kept.
 */
export async function levelPrepared(
  prepared: PreparedAudio,
  mode: LevelMode,
  decidedBy: string,
  workDir: string,
  deps: LevelDeps,
  keep: readonly string[],
  signal?: AbortSignal,
  encodeAs?: Target,
): Promise<PreparedAudio> {
  if (mode === 'off') return prepared;
  const policy = deps.level;
  const report: LevelReport = {
    mode,
    decidedBy,
    targetDbfs: policy.targetDbfs,
    maxPeakDbfs: policy.maxPeakDbfs,
    maxGainDb: policy.maxGainDb,
    action: 'unchanged',
    channels: [],
    warnings: [],
    measureMs: 0,
    renderMs: 0,
    rendered: false,
  };
  const dir = path.join(workDir, 'level');
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const target = encodeAs ?? sameFormat(prepared, deps);
  if (!target) {
    report.warnings.push(
      `level normalization skipped: ${prepared.format.codec} with ${prepared.format.channels} channels is not handled`,
    );
    return { ...prepared, level: report };
  }
  let before: LevelSurvey;
  try {
    before = await measureChannels(prepared, dir, deps, signal);
  } catch (error) {
    const why = nonFatal(error, signal);
    report.warnings.push(`level normalization skipped: the output could not be measured (${why})`);
    return { ...prepared, level: report };
  }
  const decisions = before.channels.map((m, c) =>
    decideChannel(m, before.analysis.channels[c]?.silent ?? true, policy),
  );
  const t1 = performance.now();
  report.measureMs = Math.round(t1 - t0);
  const names = channelNames(decisions.length);
  const reportOf = (after: LevelSurvey | undefined) =>
    decisions.map((d, c): LevelChannelReport => {
      const m = before.channels[c]!;
      const over = d.gainDb > 0 ? valuesAbove(m, policy.maxPeakDbfs - d.gainDb) : 0;
      // A gain always takes the mean away with it; "DC removed" is for an offset worth naming.
      const dcRemoved = d.dcOffset !== 0 && Math.abs(d.dcOffset) >= DC_THRESHOLD;
      return {
        ...names[c]!,
        outcome: d.outcome,
        why: dcRemoved ? `${d.why}; DC offset ${round5(d.dcOffset)} removed` : d.why,
        gainDb: round1(d.gainDb) ?? 0,
        neededGainDb: round1(d.neededGainDb),
        dcRemoved,
        before: levelsOf(m),
        after: after ? levelsOf(after.channels[c]!) : levelsOf(m),
        limiter: { acted: d.limiter && over > 0, valuesOverCeiling: over },
      };
    });
  if (!decisions.some(changesAudio)) {
    report.channels = reportOf(undefined);
    return { ...prepared, level: report };
  }

  const seconds = prepared.durationSeconds;
  const output = knownOutput(path.join(dir, `out.${target.container}`), target, seconds);
  const graph = levelGraph(decisions, policy);
  const input = { input: prepared.path, inputContainer: prepared.container };
  const job = { kind: 'level', ...input, graph, target, output } as const;
  let measured;
  try {
    // No source: the empty check does not apply, a changed length is checked below.
    [measured] = (await render(job, { bins: deps.bins, limits: deps.limits, from: [], signal })).outputs;
  } catch (error) {
    // A failed level pass is not the recording's fault: it is delivered without it (unless aborted or too slow).
    const run = failedRun(error);
    if (signal?.aborted || !run || run.result.timedOut) throw error;
    report.warnings.push(
      `level normalization failed (${run.result.stderrTail?.trim().split('\n').pop() ?? 'ffmpeg failed'}): ` +
        'delivered without it',
    );
    report.channels = reportOf(undefined);
    return { ...prepared, level: report };
  }
  const t2 = performance.now();
  if (
    !measured ||
    measured.samples !== prepared.samples ||
    measured.format.sampleRate !== prepared.format.sampleRate ||
    measured.format.channels !== prepared.format.channels
  ) {
    // Never expected; but a changed length must not reach Imagicle.
    report.warnings.push(
      `level normalization discarded: the result has ${measured?.samples ?? 0} samples ` +
        `at ${measured?.format.sampleRate ?? 0} Hz, ` +
        `the recording ${prepared.samples} at ${prepared.format.sampleRate} Hz`,
    );
    report.channels = reportOf(undefined);
    await rm(output.path, { force: true });
    return { ...prepared, level: report };
  }
  const after = await survey(output.path, target.container, seconds, dir, deps, signal);
  const t3 = performance.now();
  report.channels = reportOf(after);
  report.action = 'normalized';
  report.rendered = true;
  report.renderMs = Math.round(t2 - t1);
  report.measureMs += Math.round(t3 - t2);
  for (const c of report.channels) {
    const peak = c.after.truePeakDbfs;
    if (c.gainDb > 0 && peak !== null && peak > policy.maxPeakDbfs + 0.05) {
      report.warnings.push(
        `the ${c.channel} channel's true peak is ${peak} dBFS after the gain, ` +
          `above ${policy.maxPeakDbfs} (limiter margin ${LIMITER_MARGIN_DB} dB)`,
      );
    }
  }
  if (!keep.includes(prepared.path) && path.resolve(prepared.path) !== path.resolve(output.path))
    await rm(prepared.path, { force: true });
  const summary = report.channels
    .map(
      (c) =>
        `${c.channel} ${c.gainDb !== 0 ? `${c.gainDb > 0 ? '+' : ''}${c.gainDb} dB` : c.outcome}` +
        (c.dcRemoved ? ', DC removed' : ''),
    )
    .join('; ');
  return {
    ...renderedAs(prepared, measured, target, `levels normalized (LEVEL=speech): ${summary}`),
    timings: {
      probeMs: prepared.timings.probeMs,
      processMs: prepared.timings.processMs + (t2 - t1),
      measureMs: prepared.timings.measureMs + (t1 - t0) + (t3 - t2),
    },
    level: report,
  };
}

/**
 * Our own lossless intermediate (prepare-call.ts) written in its final format when the level step left it
 * as it was (nothing to change, or the step skipped): the one lossy encode, from the PCM.
 */
export async function encodeOnce(
  prepared: PreparedAudio,
  target: Target,
  workDir: string,
  deps: PrepareDeps,
  signal?: AbortSignal,
): Promise<PreparedAudio> {
  const dir = path.join(workDir, 'encode');
  await mkdir(dir, { recursive: true });
  const output = knownOutput(path.join(dir, `out.${target.container}`), target, prepared.durationSeconds);
  const input = { input: prepared.path, inputContainer: prepared.container };
  const job = { kind: 'level', ...input, graph: '[0:a]anull[out]', target, output } as const;
  const run = await render(job, { bins: deps.bins, limits: deps.limits, from: [], signal });
  const measured = run.outputs[0]!;
  if (measured.samples !== prepared.samples) {
    throw new GatewayError(
      'INTERNAL',
      `Encoding the ${prepared.samples} samples as ${target.format} gave ${measured.samples}: not delivered`,
    );
  }
  await rm(prepared.path, { force: true });
  return {
    ...renderedAs(
      prepared,
      measured,
      target,
      `encoded as ${target.format} once, from the lossless audio the level step read`,
    ),
    timings: { ...prepared.timings, processMs: prepared.timings.processMs + run.processMs },
  };
}

/** The prepared recording now in `measured` (written as `target` by this step), with why. */
function renderedAs(prepared: PreparedAudio, measured: Rendered, target: Target, reason: string): PreparedAudio {
  return {
    ...prepared,
    path: measured.path,
    bytes: measured.bytes,
    container: target.container,
    contentType: CONTENT_TYPE[target.container],
    filename: prepared.filename.replace(/\.[^.]+$/, `.${target.container}`),
    durationSeconds: measured.durationSeconds,
    isoDuration: formatIsoDuration(measured.durationSeconds),
    samples: measured.samples,
    format: measured.format,
    plan: { action: 'transcode', target, reasons: [...prepared.plan.reasons, reason] },
  };
}
