/**
 * Stereo from two legs (`attachment` + `remoteAttachment`): each leg is
 * decoded to mono PCM at the output rate, delayed by its offset, padded with
 * silence to the longer one, and joined into one stereo output
 * (media/merge.ts's graph, a `merge-legs` render job).
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { badAudio } from '../errors.js';
import { sanitiseFilename } from '../imagicle/multipart.js';
import { partiesFor, resolveOrder, type Party } from '../media/channels.js';
import type { ProbeResult } from '../media/ffprobe.js';
import { mergedLength, offsetSamples, type MergeSpec } from '../media/merge.js';
import type { Plan } from '../media/plan.js';
import { decodeOutput, knownOutput, legTarget, type LegDecode } from '../media/render-job.js';
import { boundOutput, expectedOutputBytes } from './bounds.js';
import { checkProbeLimits, exactLengthOf, probeSource } from './prepare.js';
import type { AudioInput, PreparedAudio } from './prepared.js';
import { inPart } from './render-errors.js';
import { decodeCapSeconds, failedRun, render, type RenderContext, type RenderSource } from './render.js';
import { checkStereo, FollowedOutput } from './stereo-check.js';
import { DEFAULT_DTMF_POLICY, dtmfModeOf } from '../media/dtmf-policy.js';
import { assemble, mergedMix, targetForMix, type Rebuild } from './stereo-output.js';
import type { CallDeps, CallInput } from './stereo-policy.js';
import type { PartName } from './stereo-report.js';
import { describeLeg, mergeReasons, type StereoReport } from './stereo-report.js';

interface Leg {
  part: PartName;
  party: Party;
  input: AudioInput;
  probe: ProbeResult;
  offsetMs: number;
  decode: LegDecode;
  /** Why the leg's decode is trimmed to its container's exact length, when it is. */
  trimmed: string | undefined;
}

interface DecodedLeg extends Leg {
  samples: number;
  delaySamples: number;
}

/** A call with both legs. */
export type TwoLegCall = CallInput & { remoteAttachment: AudioInput };

export async function mergeLegs(call: TwoLegCall, workDir: string, deps: CallDeps, signal?: AbortSignal) {
  const t0 = performance.now();
  const { attachment, remoteAttachment, options = {} } = call;
  const decision = resolveOrder(options, deps.stereo, call.direction);
  const [firstParty] = partiesFor(decision.order);
  const parts: Array<{ part: PartName; input: AudioInput; party: Party }> = [
    { part: 'attachment', input: attachment, party: firstParty },
    { part: 'remoteAttachment', input: remoteAttachment, party: firstParty === 'local' ? 'remote' : 'local' },
  ];
  const probes: ProbeResult[] = [];
  for (const p of parts) {
    try {
      const probed = await probeSource(p.input, deps, signal);
      checkProbeLimits(probed, deps.limits);
      probes.push(probed);
    } catch (error) {
      throw inPart(error, p.part);
    }
  }
  const t1 = performance.now();

  const dir = path.join(workDir, 'stereo');
  await mkdir(dir, { recursive: true });
  const rate = deps.output.sampleRate;
  // Each leg's exact length (ADPCM/GSM fact, Speex granule), as a plain transcode would keep it.
  const exact = await Promise.all(parts.map((p, i) => exactLengthOf(p.input.path, probes[i]!)));
  const legs: Leg[] = parts.map((p, i) => {
    const probe = probes[i]!;
    const cap = decodeCapSeconds(probe, deps.limits.maxDurationSeconds);
    const output = decodeOutput(path.join(dir, `leg-${p.party}.wav`), legTarget(rate), cap);
    const offsetMs = (p.party === 'local' ? options.localOffsetMs : options.remoteOffsetMs) ?? 0;
    const input = { path: p.input.path, hint: probe.rawHint };
    return { ...p, probe, offsetMs, trimmed: exact[i]?.reason, decode: { input, output, trim: exact[i]?.trim } };
  });
  // Before decoding: the aligned length (legs and offsets) and what it will weigh.
  const lengthOf = (l: Leg): number =>
    (l.probe.durationSeconds ?? l.decode.output.maxDurationSeconds) + l.offsetMs / 1000;
  const aligned = Math.max(...legs.map(lengthOf));
  checkAlignedLength(aligned, deps);
  await boundOutput(deps.bounds, {
    inputBytes: (await stat(attachment.path)).size + (await stat(remoteAttachment.path)).size,
    outputBytes: expectedOutputBytes(targetForMix(deps, mergedMix(deps)), aligned),
    scratchBytes: legs.reduce((sum, l) => sum + l.decode.output.maxOutputBytes, 0),
    what: 'the merged call',
  });
  try {
    const decoded = await decodeLegs(legs, rate, deps, signal);
    // The request's dtmf decides whether the DTMF detector follows the merged output.
    const dtmf = { ...(deps.dtmf ?? DEFAULT_DTMF_POLICY), mode: dtmfModeOf(options.dtmf, deps.dtmf) };
    return await mergeDecoded(decoded, attachment, decision, dir, { ...deps, dtmf }, signal, { t0, t1 });
  } finally {
    await Promise.all(legs.map((l) => rm(l.decode.output.path, { force: true })));
  }
}

/** Both legs in one run; only when that fails is each decoded alone, to name the leg at fault. */
async function decodeLegs(
  legs: readonly Leg[],
  rate: number,
  deps: CallDeps,
  signal: AbortSignal | undefined,
): Promise<DecodedLeg[]> {
  const context = (from: RenderSource[]): RenderContext => ({ bins: deps.bins, limits: deps.limits, from, signal });
  const sources = legs.map((l) => ({ probe: l.probe, part: l.part }));
  let run;
  try {
    run = await render({ kind: 'decode-legs', legs: legs.map((l) => l.decode), sampleRate: rate }, context(sources));
  } catch (error) {
    // A leg that decodes but holds nothing is named by the checks already; only a failed run is retried per leg.
    if (signal?.aborted || !failedRun(error)) throw error;
    for (const [i, l] of legs.entries()) {
      await render({ kind: 'decode-legs', legs: [l.decode], sampleRate: rate }, context([sources[i]!]));
    }
    throw error;
  }
  return legs.map((l, i) => ({
    ...l,
    samples: run.outputs[i]!.samples,
    delaySamples: offsetSamples(l.offsetMs, rate),
  }));
}

function checkAlignedLength(seconds: number, deps: CallDeps): void {
  if (seconds <= deps.limits.maxDurationSeconds) return;
  throw badAudio(
    `The aligned call would last ${seconds.toFixed(1)} s (legs and offsets), ` +
      `more than the limit of ${deps.limits.maxDurationSeconds} seconds`,
  );
}

async function mergeDecoded(
  legs: readonly DecodedLeg[],
  attachment: AudioInput,
  decision: ReturnType<typeof resolveOrder>,
  dir: string,
  deps: CallDeps,
  signal: AbortSignal | undefined,
  started: { t0: number; t1: number },
): Promise<PreparedAudio> {
  const rate = deps.output.sampleRate;
  const local = legs.find((l) => l.party === 'local')!;
  const remote = legs.find((l) => l.party === 'remote')!;
  const totalSamples = mergedLength(legs);
  checkAlignedLength(totalSamples / rate, deps);

  const mix = mergedMix(deps);
  const target = targetForMix(deps, mix);
  const spec = (m: MergeSpec['mix']): MergeSpec => ({
    local: { wav: local.decode.output.path, delaySamples: local.delaySamples },
    remote: { wav: remote.decode.output.path, delaySamples: remote.delaySamples },
    totalSamples,
    mix: m,
  });
  const build: Rebuild = (m, t, output) => ({ kind: 'merge-legs', merge: spec(m), target: t, output });
  const seconds = totalSamples / rate;
  const output = knownOutput(path.join(dir, `out.${target.container}`), target, seconds);
  const followed = new FollowedOutput(signal, (deps.dtmf?.mode ?? 'off') !== 'off');
  const run = await render(build(mix, target, output), {
    bins: deps.bins,
    limits: deps.limits,
    from: [{ probe: local.probe }],
    signal,
    follow: followed.follow,
  });
  const t2 = performance.now();

  const trims = legs.flatMap((l) => (l.trimmed ? [`the ${l.party} party's leg: ${l.trimmed}`] : []));
  const reasons = [...mergeReasons(local, remote, mix, totalSamples, rate), ...trims];
  const plan: Plan = { action: 'transcode', target, reasons };
  const filename = sanitiseFilename(attachment.originalName, target.container);
  const prepared = assemble(run.outputs[0]!, filename, local.probe, plan, {
    probeMs: started.t1 - started.t0,
    processMs: t2 - started.t1 - run.measureMs,
    measureMs: run.measureMs,
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
  if (mix !== 'stereo') return { ...prepared, stereo: report };
  return checkStereo(prepared, report, deps, dir, signal, build, followed);
}
