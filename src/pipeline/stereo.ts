/**
 * Stereo for Imagicle Voice Analytics: the local party on the left channel,
 * the remote party on the right, whatever the source sent.
 *
 * - Two legs (`attachment` + `remoteAttachment`): each leg is decoded to mono
 *   PCM at the output rate, delayed by its offset, padded with silence to the
 *   longer one, and joined into one stereo output (media/merge.ts).
 * - One file: its channels are mapped by the channel order (CHANNEL_ORDER,
 *   SOURCE_PROFILE, or per request), or picked explicitly (`channels=3,4`).
 *   A file that needs no remapping takes the ordinary path (prepare.ts), so
 *   compliant stereo is still forwarded byte for byte.
 * - Every stereo output is analysed (media/analysis.ts): per-channel level
 *   and speech activity, fake stereo, a silent channel, a silent recording.
 *   STEREO_CHECK=warn reports it; `collapse` turns fake stereo into mono.
 *
 * The result is the ordinary PreparedAudio, so it flows into the same later
 * steps (size limit, splitting, delivery) as any other recording.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ChannelOrder, SourceProfile, StereoCheck } from '../config.js';
import { badAudio, badRequest, GatewayError } from '../errors.js';
import { runFfmpeg, type ProbeResult } from '../media/ffmpeg.js';
import { bytesPerSecond, CONTENT_TYPE, targetFor, type Container, type Plan, type Target } from '../media/plan.js';
import {
  IDENTITY_ROUTE,
  isIdentity,
  partiesFor,
  resolveOrder,
  routeForOrder,
  selectionProblem,
  type ChannelRoute,
  type Direction,
  type Party,
} from '../media/channels.js';
import { legArgs, legsArgs, mergeArgs, mergedLength, offsetSamples, routeArgs, channelsOf, type Mix, type RenderIo } from '../media/merge.js';
import { analyzeWav, decodeForAnalysisArgs, type StereoAnalysis } from '../media/analysis.js';
import { readWavInfo } from '../media/wav.js';
import { formatIsoDuration } from '../media/duration.js';
import { sanitiseFilename } from '../imagicle/multipart.js';
import { DEFAULT_LEVEL_POLICY, type LevelMode, type LevelPolicy } from '../media/level.js';
import { levelPrepared } from './level.js';
import { boundOutput, expectedOutputBytes } from './bounds.js';
import {
  checkProbeLimits,
  decodeCapSeconds,
  measure,
  prepareAudio,
  probeOrFail,
  transcodeError,
  type AudioInput,
  type PrepareDeps,
  type PreparedAudio,
} from './prepare.js';

/** What one request asks for (form fields or query string; see http/stereo-options.ts). */
export interface StereoRequestOptions {
  channelOrder?: ChannelOrder | undefined;
  sourceProfile?: SourceProfile | undefined;
  /** Explicit input channels (0-based) for the local and the remote party. */
  channels?: ChannelRoute | undefined;
  /** Silence before the local party's leg starts (two legs only). */
  localOffsetMs?: number | undefined;
  /** Silence before the remote party's leg starts (two legs only). */
  remoteOffsetMs?: number | undefined;
  /** Level normalization for this request; wins over LEVEL. */
  level?: LevelMode | undefined;
  /** Sample rate of a headerless input that does not say (Dialogic VOX): overrides VOX_SAMPLE_RATE. */
  inputSampleRate?: number | undefined;
}

export interface StereoPolicy {
  channelOrder: ChannelOrder;
  sourceProfile: SourceProfile;
  check: StereoCheck;
}

export interface CallInput {
  /** The `attachment` part: the local party's leg (position 1), or the whole recording. */
  attachment: AudioInput;
  /** The `remoteAttachment` part: the remote party's leg (position 2). */
  remoteAttachment?: AudioInput | undefined;
  options?: StereoRequestOptions | undefined;
  /** The recording's direction (metadata), which caller-first profiles need. */
  direction?: Direction | undefined;
}

export interface CallDeps extends PrepareDeps {
  stereo: StereoPolicy;
  /** LEVEL and its settings (off when unset). */
  level?: LevelPolicy | undefined;
}

type PartName = 'attachment' | 'remoteAttachment';
type Side = 'left' | 'right';

export interface LegReport {
  part: PartName;
  party: Party;
  offsetMs: number;
  format: string;
  codec: string;
  sampleRate: number;
  channels: number;
  /** Exact length of the leg itself, at the output rate. */
  durationSeconds: number;
}

export interface ChannelReport {
  channel: Side;
  party: Party;
  rmsDbfs: number | null;
  peakDbfs: number | null;
  speechShare: number;
  silent: boolean;
}

export interface StereoReport {
  /** What the stereo was made from. */
  source: 'two-legs' | 'stereo-file' | 'selected-channels' | 'downmixed-channels' | 'duplicated-mono';
  mapping: {
    order: ChannelOrder;
    profile: SourceProfile;
    decidedBy: string;
    left: string;
    right: string;
  };
  legs?: LegReport[];
  /** Absent when the output is mono (CHANNELS=mono). */
  analysis?: {
    windowMs: number;
    activityThresholdDbfs: number;
    channels: ChannelReport[];
    correlation: number | null;
    levelDifferenceDb: number | null;
    fakeStereo: boolean;
    silentChannels: Side[];
    silentRecording: boolean;
    analysisMs: number;
  };
  check: { policy: StereoCheck; action: 'none' | 'warned' | 'collapsed-to-mono' };
  /** Problems worth a look (logged at warn level too). */
  warnings: string[];
  notes: string[];
  /** True when the gateway wrote the output itself (merge, remap, collapse): a re-encode must start from it. */
  rendered: boolean;
}

const SIDES: readonly Side[] = ['left', 'right'];

export const DEFAULT_STEREO_POLICY: Readonly<StereoPolicy> = { channelOrder: 'local-left', sourceProfile: 'generic', check: 'warn' };

/** Prepares a call: two legs merged, or one file mapped, then analysed; then its levels normalized (LEVEL). */
export async function prepareCall(call: CallInput, workDir: string, deps: CallDeps, signal?: AbortSignal): Promise<PreparedAudio> {
  const prepared = await prepareChannels(call, workDir, deps, signal);
  const policy = deps.level ?? DEFAULT_LEVEL_POLICY;
  const mode = call.options?.level ?? policy.mode;
  const decidedBy = call.options?.level ? `level=${mode} in the request` : `LEVEL=${mode}`;
  const keep = [call.attachment.path, ...(call.remoteAttachment ? [call.remoteAttachment.path] : [])];
  return levelPrepared(prepared, mode, decidedBy, workDir, { ...deps, level: policy }, keep, signal);
}

async function prepareChannels(
  call: CallInput,
  workDir: string,
  callDeps: CallDeps,
  signal?: AbortSignal,
): Promise<PreparedAudio> {
  const options = call.options ?? {};
  const deps = withInputSampleRate(callDeps, options);
  if (call.remoteAttachment) {
    if (options.channels) {
      throw badRequest('channels selects the channels of one file; with two legs, each leg is one party (send channels only with a single attachment)');
    }
    return mergeLegs(call.attachment, call.remoteAttachment, options, call.direction, workDir, deps, signal);
  }
  if (options.localOffsetMs !== undefined || options.remoteOffsetMs !== undefined) {
    throw badRequest('localOffsetMs and remoteOffsetMs align two legs: send the remote party\'s leg as remoteAttachment too');
  }
  return prepareOne(call.attachment, options, call.direction, workDir, deps, signal);
}

/**
 * What a later re-encode (e.g. OVERSIZE=compress) must start from: the
 * prepared output when the stereo or the level step wrote it, since the
 * attachment alone is only one leg, has its channels the wrong way round,
 * or lacks the level normalization.
 */
export function reencodeSource(prepared: PreparedAudio, original: AudioInput): AudioInput {
  if (!prepared.stereo?.rendered && !prepared.level?.rendered) return original;
  return { path: prepared.path, originalName: original.originalName, extension: prepared.container };
}

/** The request's inputSampleRate (headerless VOX) over the configured VOX_SAMPLE_RATE. */
export function withInputSampleRate<D extends PrepareDeps>(deps: D, options: StereoRequestOptions | undefined): D {
  return options?.inputSampleRate === undefined ? deps : { ...deps, voxSampleRate: options.inputSampleRate };
}

// ---------------------------------------------------------------- one file

async function prepareOne(
  input: AudioInput,
  options: StereoRequestOptions,
  direction: Direction | undefined,
  workDir: string,
  deps: CallDeps,
  signal: AbortSignal | undefined,
): Promise<PreparedAudio> {
  const t0 = performance.now();
  let decision = resolveOrder(options, deps.stereo, direction);
  // Nothing to remap unless channels are selected or the order swaps: the ordinary path, probed once.
  const early = !options.channels && decision.order === 'local-left' ? await prepareAudio(input, workDir, deps, signal) : undefined;
  const probed = early?.probe ?? (await probeOrFail(input, deps, signal));
  if (!early) checkProbeLimits(probed, deps.limits);
  const inputChannels = probed.audio.channels;
  const outputMono = deps.output.channels === 'mono';

  let route: ChannelRoute | undefined;
  if (options.channels) {
    const problem = selectionProblem(options.channels, inputChannels);
    if (problem) throw badAudio(problem);
    route = options.channels;
    decision = { ...decision, decidedBy: `channels=${route.local + 1},${route.remote + 1} in the request`, warnings: [] };
  } else if (inputChannels === 2) {
    route = routeForOrder(decision.order);
  }
  const source: StereoReport['source'] = options.channels
    ? 'selected-channels'
    : inputChannels === 2
      ? 'stereo-file'
      : inputChannels > 2
        ? 'downmixed-channels'
        : 'duplicated-mono';

  const needsRender = route !== undefined && (!isIdentity(route) || inputChannels > 2);
  const dir = path.join(workDir, 'stereo');
  let prepared: PreparedAudio;
  if (route && needsRender) {
    const mix: Mix = outputMono ? 'mono-average' : 'stereo';
    await mkdir(dir, { recursive: true });
    const target = targetForMix(deps, mix);
    const t1 = performance.now();
    const cap = decodeCapSeconds(probed, deps.limits.maxDurationSeconds);
    const io = { ...renderIoFor(target, path.join(dir, `out.${target.container}`), cap), maxDurationSeconds: cap };
    await boundOutput(deps.bounds, {
      inputBytes: (await stat(input.path)).size,
      outputBytes: expectedOutputBytes(target, probed.durationSeconds ?? cap),
      worstCaseBytes: io.maxOutputBytes,
      what: 'the converted audio',
    });
    const rendered = await render(routeArgs({ path: input.path, hint: probed.rawHint }, route, mix, target, io), target.container, probed, deps, signal);
    const reason = outputMono
      ? `input channels ${route.local + 1} and ${route.remote + 1} mixed to mono (CHANNELS=mono)`
      : `input channel ${route.local + 1} → left (local party), channel ${route.remote + 1} → right (remote party); ${decision.decidedBy}`;
    prepared = assemble(rendered, sanitiseFilename(input.originalName, target.container), probed, { action: 'transcode', target, reasons: [reason] }, {
      probeMs: t1 - t0,
      processMs: rendered.processMs,
      measureMs: rendered.measureMs,
    });
  } else {
    prepared = early ?? (await prepareAudio(input, workDir, deps, signal));
  }
  if (prepared.format.channels !== 2) return prepared;

  const sides = sidesFor(source, route);
  const report: StereoReport = {
    source,
    mapping: { order: decision.order, profile: decision.profile, decidedBy: decision.decidedBy, left: sides[0], right: sides[1] },
    check: { policy: deps.stereo.check, action: 'none' },
    warnings: [...decision.warnings],
    notes: [],
    rendered: needsRender,
  };
  if (source === 'duplicated-mono') report.notes.push('a mono input duplicated on both channels (CHANNELS=stereo): identical channels are expected');
  if (source === 'downmixed-channels') {
    report.notes.push(`${inputChannels} input channels downmixed to stereo; send channels=L,R to pick the local and remote party's channels instead`);
  }
  return checkStereo(prepared, report, deps, dir, signal, (mix, target, io) =>
    routeArgs({ path: input.path, hint: probed.rawHint }, route ?? IDENTITY_ROUTE, mix, target, io),
  );
}

function sidesFor(source: StereoReport['source'], route: ChannelRoute | undefined): [string, string] {
  if (source === 'duplicated-mono') return ['the mono input', 'the mono input'];
  if (source === 'downmixed-channels' || !route) return ['downmix of all input channels', 'downmix of all input channels'];
  return [`local party ← input channel ${route.local + 1}`, `remote party ← input channel ${route.remote + 1}`];
}

// ---------------------------------------------------------------- two legs

interface PreparedLeg {
  part: PartName;
  party: Party;
  input: AudioInput;
  probe: ProbeResult;
  wav: string;
  samples: number;
  delaySamples: number;
  offsetMs: number;
}

async function mergeLegs(
  attachment: AudioInput,
  remoteAttachment: AudioInput,
  options: StereoRequestOptions,
  direction: Direction | undefined,
  workDir: string,
  deps: CallDeps,
  signal: AbortSignal | undefined,
): Promise<PreparedAudio> {
  const t0 = performance.now();
  const decision = resolveOrder(options, deps.stereo, direction);
  const [firstParty] = partiesFor(decision.order);
  const parts: Array<{ part: PartName; input: AudioInput; party: Party }> = [
    { part: 'attachment', input: attachment, party: firstParty },
    { part: 'remoteAttachment', input: remoteAttachment, party: firstParty === 'local' ? 'remote' : 'local' },
  ];
  const probes: ProbeResult[] = [];
  for (const p of parts) {
    const probed = await probeOrFail(p.input, deps, signal).catch((error: unknown) => {
      throw inPart(error, p.part);
    });
    try {
      checkProbeLimits(probed, deps.limits);
    } catch (error) {
      throw inPart(error, p.part);
    }
    probes.push(probed);
  }
  const t1 = performance.now();

  const dir = path.join(workDir, 'stereo');
  await mkdir(dir, { recursive: true });
  const rate = deps.output.sampleRate;
  const decodes = parts.map((p, i) => {
    const probed = probes[i]!;
    const cap = decodeCapSeconds(probed, deps.limits.maxDurationSeconds);
    const io: RenderIo = { output: path.join(dir, `leg-${p.party}.wav`), maxDurationSeconds: cap, maxOutputBytes: rate * 2 * cap * 1.02 + 1024 * 1024 };
    return { ...p, probed, cap, io, leg: { path: p.input.path, hint: probed.rawHint } };
  });
  const [a, b] = [decodes[0]!, decodes[1]!];
  const longest = Math.max(a.probed.durationSeconds ?? a.cap, b.probed.durationSeconds ?? b.cap);
  // Before decoding: the aligned length (legs and offsets) and what it will weigh.
  const offsetOf = (party: Party): number =>
    ((party === 'local' ? options.localOffsetMs : options.remoteOffsetMs) ?? 0) / 1000;
  const aligned = Math.max(...decodes.map((d) => (d.probed.durationSeconds ?? d.cap) + offsetOf(d.party)));
  if (aligned > deps.limits.maxDurationSeconds) {
    throw badAudio(
      `The aligned call would last ${aligned.toFixed(1)} s (legs and offsets), ` +
        `more than the limit of ${deps.limits.maxDurationSeconds} seconds`,
    );
  }
  await boundOutput(deps.bounds, {
    inputBytes: (await stat(attachment.path)).size + (await stat(remoteAttachment.path)).size,
    outputBytes: expectedOutputBytes(targetForMix(deps, mergedMix(deps)), aligned),
    scratchBytes: decodes.reduce((sum, d) => sum + d.io.maxOutputBytes, 0),
    what: 'the merged call',
  });
  try {
    // Both legs in one run; only when that fails is each decoded alone, to name the leg at fault.
    await runFfmpeg(deps.bins, legsArgs([a.leg, b.leg], rate, [a.io, b.io]), { timeoutMs: budgetMs(deps, longest), ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted) throw transcodeError(error, a.probed);
    for (const p of decodes) {
      try {
        await runFfmpeg(deps.bins, legArgs(p.leg, rate, p.io), { timeoutMs: budgetMs(deps, p.probed.durationSeconds), ...(signal ? { signal } : {}) });
      } catch (legError) {
        throw inPart(transcodeError(legError, p.probed), p.part);
      }
    }
    throw transcodeError(error, a.probed);
  }
  const legs: PreparedLeg[] = [];
  for (const p of decodes) {
    const info = await readWavInfo(p.io.output);
    if (!info || info.frames === 0) throw inPart(badAudio(`The file (${p.probed.formatName}, ${p.probed.audio.codecName}) holds no audio samples`), p.part);
    if (info.frames / rate >= p.cap - 0.05) {
      throw inPart(badAudio(`The audio decodes to more than its allowed length (decoding stopped at ${p.cap} s)`), p.part);
    }
    const offsetMs = (p.party === 'local' ? options.localOffsetMs : options.remoteOffsetMs) ?? 0;
    legs.push({
      part: p.part,
      party: p.party,
      input: p.input,
      probe: p.probed,
      wav: p.io.output,
      samples: info.frames,
      delaySamples: offsetSamples(offsetMs, rate),
      offsetMs,
    });
  }
  const local = legs.find((l) => l.party === 'local')!;
  const remote = legs.find((l) => l.party === 'remote')!;
  const totalSamples = mergedLength(legs);
  if (totalSamples / rate > deps.limits.maxDurationSeconds) {
    throw badAudio(
      `The aligned call would last ${(totalSamples / rate).toFixed(1)} s (legs and offsets), more than the limit of ${deps.limits.maxDurationSeconds} seconds`,
    );
  }

  const mix = mergedMix(deps);
  const target = targetForMix(deps, mix);
  const build: Rebuild = (m, t, io) =>
    mergeArgs(
      { local: { wav: local.wav, delaySamples: local.delaySamples }, remote: { wav: remote.wav, delaySamples: remote.delaySamples }, totalSamples, mix: m },
      t,
      io,
    );
  const seconds = totalSamples / rate;
  const io = renderIoFor(target, path.join(dir, `out.${target.container}`), seconds);
  const rendered = await render(build(mix, target, io), target.container, local.probe, deps, signal, seconds);
  const t2 = performance.now();

  const describeLeg = (l: PreparedLeg): string =>
    `${l.party} party ← ${l.part} (${l.probe.audio.codecName}, ${l.probe.audio.sampleRate} Hz${l.probe.audio.channels > 1 ? `, ${l.probe.audio.channels} channels downmixed` : ''}${l.offsetMs ? `, starts at ${l.offsetMs} ms` : ''})`;
  const reasons = [
    mix === 'stereo'
      ? `two legs merged: left = ${describeLeg(local)}, right = ${describeLeg(remote)}`
      : `two legs mixed to mono (CHANNELS=mono): ${describeLeg(local)}; ${describeLeg(remote)}`,
  ];
  const shorter = local.delaySamples + local.samples < remote.delaySamples + remote.samples ? local : remote;
  if (local.delaySamples + local.samples !== remote.delaySamples + remote.samples) {
    reasons.push(`the ${shorter.party} party's leg is padded with ${((totalSamples - shorter.delaySamples - shorter.samples) / rate).toFixed(3)} s of silence at the end`);
  }
  const prepared = assemble(rendered, sanitiseFilename(attachment.originalName, target.container), local.probe, { action: 'transcode', target, reasons }, {
    probeMs: t1 - t0,
    processMs: t2 - t1 - rendered.measureMs,
    measureMs: rendered.measureMs,
  });
  const report: StereoReport = {
    source: 'two-legs',
    mapping: {
      order: decision.order,
      profile: decision.profile,
      decidedBy: decision.decidedBy,
      left: describeLeg(local),
      right: describeLeg(remote),
    },
    legs: legs.map((l) => ({
      part: l.part,
      party: l.party,
      offsetMs: l.offsetMs,
      format: l.probe.formatName,
      codec: l.probe.audio.codecName,
      sampleRate: l.probe.audio.sampleRate,
      channels: l.probe.audio.channels,
      durationSeconds: l.samples / rate,
    })),
    check: { policy: deps.stereo.check, action: 'none' },
    warnings: [...decision.warnings],
    notes: [],
    rendered: true,
  };
  try {
    if (mix !== 'stereo') return { ...prepared, stereo: report };
    return await checkStereo(prepared, report, deps, dir, signal, build);
  } finally {
    await Promise.all(legs.map((l) => rm(l.wav, { force: true })));
  }
}

/** What two legs become: stereo, or one mono mix under CHANNELS=mono. */
function mergedMix(deps: PrepareDeps): Mix {
  return deps.output.channels === 'mono' ? 'mono-sum' : 'stereo';
}

/** Names the part in an audio error, so the client knows which leg is at fault. */
function inPart(error: unknown, part: PartName): unknown {
  if (error instanceof GatewayError && error.code === 'BAD_AUDIO') {
    return new GatewayError(error.code, `${part}: ${error.message}`, {
      cause: error,
      detail: error.detail,
    });
  }
  return error;
}

// ---------------------------------------------------------------- analysis and the check

/** The argv that renders the same output again with another mix (fake stereo → mono). */
type Rebuild = (mix: Mix, target: Target, io: RenderIo) => string[];

/** Analyses a stereo output, applies STEREO_CHECK, and attaches the report. */
async function checkStereo(
  prepared: PreparedAudio,
  report: StereoReport,
  deps: CallDeps,
  dir: string,
  signal: AbortSignal | undefined,
  rebuild: Rebuild,
): Promise<PreparedAudio> {
  const started = performance.now();
  let analysis: StereoAnalysis;
  try {
    analysis = await analyzeOutput(prepared, dir, deps, signal);
  } catch (error) {
    if (signal?.aborted || error instanceof GatewayError) throw error;
    report.warnings.push(`the stereo analysis failed (${error instanceof Error ? error.message : String(error)}): nothing was checked`);
    return { ...prepared, stereo: report };
  }
  const parties: readonly Party[] = ['local', 'remote'];
  const duplicated = report.source === 'duplicated-mono' || report.source === 'downmixed-channels';
  report.analysis = {
    windowMs: analysis.windowMs,
    activityThresholdDbfs: analysis.activityThresholdDbfs,
    channels: analysis.channels.slice(0, 2).map((c, i) => ({ channel: SIDES[i]!, party: parties[i]!, ...c })),
    correlation: analysis.correlation,
    levelDifferenceDb: analysis.levelDifferenceDb,
    fakeStereo: analysis.fakeStereo,
    silentChannels: analysis.silentChannels.map((i) => SIDES[i]!),
    silentRecording: analysis.silentRecording,
    analysisMs: Math.round(performance.now() - started),
  };

  const findings: string[] = [];
  if (analysis.silentRecording) findings.push('the recording is silent on both channels');
  for (const i of analysis.silentChannels) {
    findings.push(
      `the ${SIDES[i]} channel (${parties[i]} party) is silent (speech in ${(analysis.channels[i]!.speechShare * 100).toFixed(1)}% of the time): check that leg or the source's recording settings`,
    );
  }
  if (analysis.fakeStereo && report.source !== 'duplicated-mono') {
    findings.push(
      `fake stereo: both channels carry the same audio (correlation ${analysis.correlation}, levels ${analysis.levelDifferenceDb} dB apart), so Voice Analytics cannot tell the parties apart`,
    );
  }
  report.warnings.push(...findings);
  if (findings.length > 0) report.check.action = 'warned';

  const collapse = analysis.fakeStereo && deps.stereo.check === 'collapse' && !duplicated;
  if (!collapse) return { ...prepared, stereo: report };

  const target = targetForMix(deps, 'mono-average');
  const collapseDir = path.join(dir, 'collapse');
  await mkdir(collapseDir, { recursive: true });
  const seconds = prepared.durationSeconds;
  const io = renderIoFor(target, path.join(collapseDir, `out.${target.container}`), seconds);
  const t1 = performance.now();
  const rendered = await render(rebuild('mono-average', target, io), target.container, prepared.probe, deps, signal, seconds);
  report.check.action = 'collapsed-to-mono';
  report.rendered = true;
  report.notes.push(`fake stereo collapsed to mono (STEREO_CHECK=collapse): ${rendered.samples} samples; the stereo had ${prepared.samples}`);
  const reasons = [...prepared.plan.reasons, 'fake stereo (both channels the same) collapsed to mono: STEREO_CHECK=collapse'];
  const collapsed = assemble(rendered, prepared.filename.replace(/\.[^.]+$/, `.${target.container}`), prepared.probe, { action: 'transcode', target, reasons }, {
    probeMs: prepared.timings.probeMs,
    processMs: prepared.timings.processMs + (performance.now() - t1) - rendered.measureMs,
    measureMs: prepared.timings.measureMs + rendered.measureMs,
  });
  return { ...collapsed, stereo: report };
}

async function analyzeOutput(prepared: PreparedAudio, dir: string, deps: CallDeps, signal: AbortSignal | undefined): Promise<StereoAnalysis> {
  if (prepared.container === 'wav') return analyzeWav(prepared.path, undefined, signal);
  await mkdir(dir, { recursive: true });
  const wav = path.join(dir, 'analysis.wav');
  try {
    await runFfmpeg(deps.bins, decodeForAnalysisArgs(prepared.path, wav), {
      timeoutMs: budgetMs(deps, prepared.durationSeconds),
      ...(signal ? { signal } : {}),
    });
    return await analyzeWav(wav, undefined, signal);
  } finally {
    await rm(wav, { force: true });
  }
}

// ---------------------------------------------------------------- rendering

interface Rendered {
  path: string;
  bytes: number;
  container: Container;
  samples: number;
  durationSeconds: number;
  format: PreparedAudio['format'];
  processMs: number;
  measureMs: number;
}

function targetForMix(deps: PrepareDeps, mix: Mix): Target {
  return targetFor({ ...deps.output, channels: channelsOf(mix) === 2 ? 'stereo' : 'mono' }, 2);
}

function renderIoFor(target: Target, output: string, seconds: number): RenderIo {
  return {
    output,
    maxDurationSeconds: Math.ceil(seconds) + 1,
    maxOutputBytes: bytesPerSecond(target) * (seconds + 1) * 1.02 + 1024 * 1024,
  };
}

/** Wall-clock budget for one ffmpeg run, like prepare.ts's timeoutFor. */
function budgetMs(deps: PrepareDeps, seconds: number | undefined): number {
  return Math.min(deps.limits.processTimeoutMs, 60_000 + (seconds ?? deps.limits.maxDurationSeconds) * 100);
}

async function render(
  args: string[],
  container: Container,
  probed: ProbeResult,
  deps: PrepareDeps,
  signal: AbortSignal | undefined,
  seconds?: number,
): Promise<Rendered> {
  const output = args[args.length - 1]!.replace(/^file:/, '');
  const t0 = performance.now();
  try {
    await runFfmpeg(deps.bins, args, { timeoutMs: budgetMs(deps, seconds ?? probed.durationSeconds), ...(signal ? { signal } : {}) });
  } catch (error) {
    throw transcodeError(error, probed);
  }
  const t1 = performance.now();
  const measured = await measure(output, container);
  if (measured.samples === 0) throw badAudio(`The file (${probed.formatName}, ${probed.audio.codecName}) holds no audio samples`);
  const cap = decodeCapSeconds(probed, deps.limits.maxDurationSeconds);
  if (seconds === undefined && measured.durationSeconds >= cap - 0.05) {
    throw badAudio(`The audio decodes to more than its allowed length (decoding stopped at ${cap} s)`);
  }
  const { size } = await stat(output);
  return {
    path: output,
    bytes: size,
    container,
    samples: measured.samples,
    durationSeconds: measured.durationSeconds,
    format: measured.format,
    processMs: t1 - t0,
    measureMs: performance.now() - t1,
  };
}

function assemble(
  rendered: Rendered,
  filename: string,
  probed: ProbeResult,
  plan: Plan,
  timings: PreparedAudio['timings'],
): PreparedAudio {
  return {
    path: rendered.path,
    bytes: rendered.bytes,
    container: rendered.container,
    contentType: CONTENT_TYPE[rendered.container],
    filename,
    durationSeconds: rendered.durationSeconds,
    isoDuration: formatIsoDuration(rendered.durationSeconds),
    samples: rendered.samples,
    format: rendered.format,
    probe: probed,
    plan,
    timings,
  };
}
