/**
 * The call preparation (prepareCall): what a recording goes through before
 * it is delivered (ingest.ts) or returned (/v1/transcode, the transcode CLI).
 *
 * Stereo for Imagicle Voice Analytics first, the local party on the left
 * channel and the remote party on the right, whatever the source sent:
 * - two legs (`attachment` + `remoteAttachment`): stereo-legs.ts;
 * - one file, its channels mapped or picked: stereo-one.ts;
 * - every stereo output analysed and STEREO_CHECK applied: stereo-check.ts;
 * - what the report says: stereo-report.ts; the options and policy: stereo-policy.ts.
 * Then the levels (LEVEL, level.ts) and the keypad tones (DTMF, dtmf.ts).
 *
 * The result is the ordinary PreparedAudio, so it flows into the same later
 * steps (size limit, splitting, delivery) as any other recording.
 */
import { badRequest } from '../errors.js';
import { DEFAULT_LEVEL_POLICY } from '../media/level.js';
import { CODEC_OF, type Target } from '../media/plan.js';
import { dtmfModeOf } from '../media/dtmf-policy.js';
import { dtmfPrepared } from './dtmf.js';
import { encodeOnce, levelPrepared } from './level.js';
import type { AudioInput, PrepareDeps, PreparedAudio } from './prepared.js';
import { mergeLegs } from './stereo-legs.js';
import { prepareOne } from './stereo-one.js';
import type { CallDeps, CallInput, StereoRequestOptions } from './stereo-policy.js';

/**
 * Prepares a call: two legs merged, or one file mapped, then analysed; then its levels normalized (LEVEL); then
 * its keypad tones found and masked (DTMF).
 */
export async function prepareCall(
  call: CallInput,
  workDir: string,
  deps: CallDeps,
  signal?: AbortSignal,
): Promise<PreparedAudio> {
  const policy = deps.level ?? DEFAULT_LEVEL_POLICY;
  const mode = call.options?.level ?? policy.mode;
  const decidedBy = call.options?.level ? `level=${mode} in the request` : `LEVEL=${mode}`;
  const dtmf = dtmfModeOf(call.options?.dtmf, deps.dtmf);
  const dtmfBy = call.options?.dtmf ? `dtmf=${dtmf} in the request` : `DTMF=${dtmf}`;
  // MP3 out with levels to set or tones to find: what we render is lossless PCM at the output's rate first, and
  // MP3 is encoded once, by the level step (or after it, or after the masking), rather than encoded, decoded and
  // encoded again.
  const lossless = (mode !== 'off' || dtmf !== 'off') && deps.output.format === 'mp3';
  const stepDeps = lossless ? { ...deps, output: { ...deps.output, format: 'pcm16' as const } } : deps;
  const prepared = await prepareChannels(call, workDir, stepDeps, signal);
  const keep = [call.attachment.path, ...(call.remoteAttachment ? [call.remoteAttachment.path] : [])];
  // Only what we rendered: a client's compliant file (WAV or MP3) keeps its own format, as without levels.
  const channels = prepared.format.channels;
  const ours =
    lossless &&
    prepared.plan.action === 'transcode' &&
    prepared.container === 'wav' &&
    (channels === 1 || channels === 2);
  const encodeAs = ours ? mp3TargetFor(prepared, deps) : undefined;
  // With DTMF on, the level step keeps the PCM: the tones are found (and masked) before the one encode.
  const levelled = await levelPrepared(
    prepared,
    mode,
    decidedBy,
    workDir,
    { ...deps, level: policy },
    keep,
    signal,
    dtmf === 'off' ? encodeAs : undefined,
  );
  const checked = await dtmfPrepared(levelled, dtmf, dtmfBy, workDir, deps, keep, signal);
  if (!encodeAs || checked.container === encodeAs.container) return checked;
  return encodeOnce(checked, encodeAs, workDir, deps, signal);
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
      throw badRequest(
        'channels selects the channels of one file; with two legs, each leg is one party ' +
          '(send channels only with a single attachment)',
      );
    }
    return mergeLegs({ ...call, remoteAttachment: call.remoteAttachment }, workDir, deps, signal);
  }
  if (options.localOffsetMs !== undefined || options.remoteOffsetMs !== undefined) {
    throw badRequest(
      "localOffsetMs and remoteOffsetMs align two legs: send the remote party's leg as remoteAttachment too",
    );
  }
  return prepareOne(call, workDir, deps, signal);
}

/**
 * What a later re-encode (e.g. OVERSIZE=compress) must start from: the
 * prepared output when the stereo or the level step wrote it, since the
 * attachment alone is only one leg, has its channels the wrong way round,
 * or lacks the level normalization or the DTMF masking.
 */
export function reencodeSource(prepared: PreparedAudio, original: AudioInput): AudioInput {
  if (!prepared.stereo?.rendered && !prepared.level?.rendered && !prepared.dtmf?.rendered) return original;
  return { path: prepared.path, originalName: original.originalName, extension: prepared.container };
}

/** The request's inputSampleRate (headerless VOX) over the configured VOX_SAMPLE_RATE. */
export function withInputSampleRate<D extends PrepareDeps>(deps: D, options: StereoRequestOptions | undefined): D {
  return options?.inputSampleRate === undefined ? deps : { ...deps, voxSampleRate: options.inputSampleRate };
}

/** The configured MP3 for audio prepared as PCM: its rate and channels, the configured bitrate. */
function mp3TargetFor(prepared: PreparedAudio, deps: CallDeps): Target {
  return {
    format: 'mp3',
    container: 'mp3',
    codec: CODEC_OF.mp3,
    sampleRate: prepared.format.sampleRate,
    channels: prepared.format.channels === 1 ? 1 : 2,
    mp3BitrateKbps: deps.output.mp3BitrateKbps,
  };
}
