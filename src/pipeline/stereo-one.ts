/**
 * Stereo from one file: its channels are mapped by the channel order
 * (CHANNEL_ORDER, SOURCE_PROFILE, or per request), or picked explicitly
 * (`channels=3,4`). A file that needs no remapping takes the ordinary path
 * (prepare.ts), so compliant stereo is still forwarded byte for byte.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { badAudio } from '../errors.js';
import { sanitiseFilename } from '../imagicle/multipart.js';
import {
  IDENTITY_ROUTE,
  isIdentity,
  resolveOrder,
  routeForOrder,
  selectionProblem,
  type ChannelRoute,
} from '../media/channels.js';
import type { Mix } from '../media/merge.js';
import type { Plan } from '../media/plan.js';
import { decodeOutput } from '../media/render-job.js';
import { boundOutput, expectedOutputBytes } from './bounds.js';
import { checkProbeLimits, exactLengthOf, prepareAudio, probeSource } from './prepare.js';
import type { PreparedAudio } from './prepared.js';
import { decodeCapSeconds, render } from './render.js';
import { checkStereo, FollowedOutput } from './stereo-check.js';
import { dtmfModeOf } from '../media/dtmf-policy.js';
import { assemble, targetForMix, type Rebuild } from './stereo-output.js';
import type { CallDeps, CallInput } from './stereo-policy.js';
import { routeReason, sidesFor, sourceNotes, sourceOfFile, type StereoReport } from './stereo-report.js';

export async function prepareOne(call: CallInput, workDir: string, deps: CallDeps, signal?: AbortSignal) {
  const t0 = performance.now();
  const { attachment: input, direction, options = {} } = call;
  let decision = resolveOrder(options, deps.stereo, direction);
  // Nothing to remap unless channels are selected or the order swaps: the ordinary path, probed once.
  const ordinary = !options.channels && decision.order === 'local-left';
  // A stereo WAV output is analysed while ffmpeg writes it.
  const followed = new FollowedOutput(signal, dtmfModeOf(call.options?.dtmf, deps.dtmf) !== 'off');
  const early = ordinary ? await prepareAudio(input, workDir, deps, signal, followed.follow) : undefined;
  const probed = early?.probe ?? (await probeSource(input, deps, signal));
  if (!early) checkProbeLimits(probed, deps.limits);
  const inputChannels = probed.audio.channels;
  const outputMono = deps.output.channels === 'mono';

  let route: ChannelRoute | undefined;
  if (options.channels) {
    const problem = selectionProblem(options.channels, inputChannels);
    if (problem) throw badAudio(problem);
    route = options.channels;
    const decidedBy = `channels=${route.local + 1},${route.remote + 1} in the request`;
    decision = { ...decision, decidedBy, warnings: [] };
  } else if (inputChannels === 2) {
    route = routeForOrder(decision.order);
  }
  const source = sourceOfFile(options.channels !== undefined, inputChannels);
  const file = { path: input.path, hint: probed.rawHint };

  const needsRender = route !== undefined && (!isIdentity(route) || inputChannels > 2);
  const dir = path.join(workDir, 'stereo');
  // The container's exact length (ADPCM/GSM fact, Speex granule), as a plain transcode would keep it.
  const exact = needsRender ? await exactLengthOf(input.path, probed) : undefined;
  let prepared: PreparedAudio;
  if (route && needsRender) {
    const mix: Mix = outputMono ? 'mono-average' : 'stereo';
    await mkdir(dir, { recursive: true });
    const target = targetForMix(deps, mix);
    const t1 = performance.now();
    const cap = decodeCapSeconds(probed, deps.limits.maxDurationSeconds);
    const output = decodeOutput(path.join(dir, `out.${target.container}`), target, cap);
    await boundOutput(deps.bounds, {
      inputBytes: (await stat(input.path)).size,
      outputBytes: expectedOutputBytes(target, probed.durationSeconds ?? cap),
      worstCaseBytes: output.maxOutputBytes,
      what: 'the converted audio',
    });
    const job = { kind: 'route', input: file, route, mix, target, trim: exact?.trim, output } as const;
    const context = {
      bins: deps.bins,
      limits: deps.limits,
      from: [{ probe: probed }],
      signal,
      follow: followed.follow,
    };
    const run = await render(job, context);
    const reasons = [routeReason(route, outputMono, decision.decidedBy), ...(exact ? [exact.reason] : [])];
    const plan: Plan = { action: 'transcode', target, reasons };
    const filename = sanitiseFilename(input.originalName, target.container);
    prepared = assemble(run.outputs[0]!, filename, probed, plan, {
      probeMs: t1 - t0,
      processMs: run.processMs,
      measureMs: run.measureMs,
    });
  } else {
    prepared = early ?? (await prepareAudio(input, workDir, deps, signal));
  }
  if (prepared.format.channels !== 2) return prepared;

  const [left, right] = sidesFor(source, route);
  const { order, profile, decidedBy } = decision;
  const report: StereoReport = {
    source,
    mapping: { order, profile, decidedBy, left, right },
    check: { policy: deps.stereo.check, action: 'none' },
    warnings: [...decision.warnings],
    notes: sourceNotes(source, inputChannels),
    rendered: needsRender,
  };
  const rebuildRoute = route ?? IDENTITY_ROUTE;
  const rebuild: Rebuild = (mix, target, output) => ({
    kind: 'route',
    input: file,
    route: rebuildRoute,
    mix,
    target,
    trim: exact?.trim,
    output,
  });
  return checkStereo(prepared, report, deps, dir, signal, rebuild, followed);
}
