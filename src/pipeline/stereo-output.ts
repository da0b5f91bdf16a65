/**
 * The stereo steps' outputs: the target of a mix, and a render turned into
 * the ordinary PreparedAudio, so that it flows into the same later steps.
 */
import { formatIsoDuration } from '../imagicle/duration.js';
import type { ProbeResult } from '../media/ffprobe.js';
import { channelsOf, type Mix } from '../media/merge.js';
import { CONTENT_TYPE, targetFor, type Plan, type Target } from '../media/plan.js';
import type { RenderJob, RenderOutput } from '../media/render-job.js';
import type { PrepareDeps, PreparedAudio } from './prepared.js';
import type { Rendered } from './render.js';

/** The job that renders the same output again with another mix (fake stereo → mono). */
export type Rebuild = (mix: Mix, target: Target, output: RenderOutput) => RenderJob;

export function targetForMix(deps: PrepareDeps, mix: Mix): Target {
  return targetFor({ ...deps.output, channels: channelsOf(mix) === 2 ? 'stereo' : 'mono' }, 2);
}

/** What two legs become: stereo, or one mono mix under CHANNELS=mono. */
export function mergedMix(deps: PrepareDeps): Mix {
  return deps.output.channels === 'mono' ? 'mono-sum' : 'stereo';
}

export function assemble(
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
