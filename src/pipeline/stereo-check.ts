/**
 * Every stereo output is analysed (media/analysis.ts): per-channel level and
 * speech activity, fake stereo, a silent channel, a silent recording.
 * STEREO_CHECK=warn reports it; `collapse` renders fake stereo again as mono.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { analyzeWav, type StereoAnalysis } from '../media/analysis.js';
import { analyzeWhileWritten, type FollowedAnalysis } from '../media/analysis-follow.js';
import { DtmfDetector } from '../media/dtmf-detect.js';
import type { DtmfScan } from '../media/dtmf-wav.js';
import { knownOutput } from '../media/render-job.js';
import type { PreparedAudio } from './prepared.js';
import { nonFatal, render, type FollowOutput } from './render.js';
import type { CallDeps } from './stereo-policy.js';
import { assemble, targetForMix, type Rebuild } from './stereo-output.js';
import { analysisReport, findingsOf, type StereoReport } from './stereo-report.js';

/**
 * The analysis of a render's output made while ffmpeg writes it (media/analysis-follow.ts): pass `follow` to the
 * render, then `result` to checkStereo. Only the first output is followed.
 */
export class FollowedOutput {
  private running: Promise<FollowedAnalysis | undefined> | undefined;
  private detector: DtmfDetector | undefined;

  /** `dtmf`: the DTMF detector reads the same samples (DTMF=detect or mask). */
  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly dtmf = false,
  ) {}

  readonly follow: FollowOutput = ([first], exited) => {
    // Our outputs are named by their container (out.wav, out.mp3): only a WAV can be followed.
    if (!first?.endsWith('.wav')) return;
    this.detector = undefined;
    const alongside = this.dtmf
      ? {
          start: (rate: number) => (this.detector = new DtmfDetector(2, rate)),
          push: (samples: Int16Array, frames: number) => this.detector?.pushInt16(samples, frames),
        }
      : undefined;
    this.running = analyzeWhileWritten(first, exited, this.signal, alongside);
  };

  /** The tones found while following, when the followed file is `prepared`'s very samples. */
  async dtmfScan(prepared: PreparedAudio): Promise<DtmfScan | undefined> {
    const followed = await this.running;
    const detector = this.detector;
    if (!followed || !detector || followed.file !== prepared.path || followed.frames !== prepared.samples)
      return undefined;
    const { file, frames, sampleRate } = followed;
    return { file, frames, sampleRate, channels: 2, tones: detector.finish() };
  }

  /** The followed analysis when it is that of `prepared`'s very samples; undefined otherwise. */
  async result(prepared: PreparedAudio): Promise<StereoAnalysis | undefined> {
    const followed = await this.running;
    if (!followed || followed.file !== prepared.path || followed.frames !== prepared.samples) return undefined;
    return followed.analysis;
  }
}

/** Analyses a stereo output, applies STEREO_CHECK, and attaches the report. */
export async function checkStereo(
  prepared: PreparedAudio,
  report: StereoReport,
  deps: CallDeps,
  dir: string,
  signal: AbortSignal | undefined,
  rebuild: Rebuild,
  followed?: FollowedOutput,
): Promise<PreparedAudio> {
  const started = performance.now();
  let analysis: StereoAnalysis;
  try {
    analysis = (await followed?.result(prepared)) ?? (await analyzeOutput(prepared, dir, deps, signal));
  } catch (error) {
    const why = nonFatal(error, signal);
    report.warnings.push(`the stereo analysis failed (${why}): nothing was checked`);
    return { ...prepared, stereo: report };
  }
  report.analysis = analysisReport(analysis, Math.round(performance.now() - started));
  const findings = findingsOf(analysis, report.source);
  report.warnings.push(...findings);
  if (findings.length > 0) report.check.action = 'warned';

  const duplicated = report.source === 'duplicated-mono' || report.source === 'downmixed-channels';
  const collapse = analysis.fakeStereo && deps.stereo.check === 'collapse' && !duplicated;
  if (!collapse) {
    const dtmfScan = await followed?.dtmfScan(prepared);
    return { ...prepared, stereo: report, ...(dtmfScan ? { dtmfScan } : {}) };
  }

  const target = targetForMix(deps, 'mono-average');
  const collapseDir = path.join(dir, 'collapse');
  await mkdir(collapseDir, { recursive: true });
  const output = knownOutput(path.join(collapseDir, `out.${target.container}`), target, prepared.durationSeconds);
  const run = await render(rebuild('mono-average', target, output), {
    bins: deps.bins,
    limits: deps.limits,
    from: [{ probe: prepared.probe }],
    signal,
  });
  const rendered = run.outputs[0]!;
  report.check.action = 'collapsed-to-mono';
  report.rendered = true;
  report.notes.push(
    `fake stereo collapsed to mono (STEREO_CHECK=collapse): ${rendered.samples} samples; ` +
      `the stereo had ${prepared.samples}`,
  );
  const reasons = [
    ...prepared.plan.reasons,
    'fake stereo (both channels the same) collapsed to mono: STEREO_CHECK=collapse',
  ];
  const filename = prepared.filename.replace(/\.[^.]+$/, `.${target.container}`);
  const collapsed = assemble(
    rendered,
    filename,
    prepared.probe,
    { action: 'transcode', target, reasons },
    {
      probeMs: prepared.timings.probeMs,
      processMs: prepared.timings.processMs + run.processMs,
      measureMs: prepared.timings.measureMs + run.measureMs,
    },
  );
  return { ...collapsed, stereo: report };
}

async function analyzeOutput(
  prepared: PreparedAudio,
  dir: string,
  deps: CallDeps,
  signal: AbortSignal | undefined,
): Promise<StereoAnalysis> {
  if (prepared.container === 'wav') return analyzeWav(prepared.path, undefined, signal);
  await mkdir(dir, { recursive: true });
  const wav = path.join(dir, 'analysis.wav');
  try {
    const seconds = prepared.durationSeconds;
    const job = { kind: 'decode-for-analysis', input: prepared.path, output: wav, seconds } as const;
    await render(job, { bins: deps.bins, limits: deps.limits, from: [], signal });
    return await analyzeWav(wav, undefined, signal);
  } finally {
    await rm(wav, { force: true });
  }
}
