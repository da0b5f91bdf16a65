/**
 * Before delivery: prepared audio + metadata → the parts to send and the
 * metadata each carries. Delivering them is delivery/run-job.ts's one loop,
 * whatever holds the job. Takes its dependencies; owns no I/O setup.
 */
import type { GatewayError } from '../errors.js';
import type { RecordingMetadata } from '../imagicle/schema.js';
import type { UploadInput, UpstreamResponse } from '../imagicle/client.js';
import { shiftInstant } from '../imagicle/instant.js';
import type { AudioInput, PreparedAudio } from './prepared.js';
import { DEFAULT_STEREO_POLICY, type StereoPolicy, type StereoRequestOptions } from './stereo-policy.js';
import { prepareCall, reencodeSource, withInputSampleRate } from './prepare-call.js';
import type { DtmfPolicy } from '../media/dtmf-policy.js';
import type { LevelPolicy } from '../media/level.js';
import { fitToLimit, type DeliverablePart, type FitDeps, type FittedAudio } from './fit.js';
import type { GatewayMetrics } from '../metrics.js';

export type Deliver = (upload: UploadInput) => Promise<UpstreamResponse>;

export interface IngestDeps extends FitDeps {
  deliver: Deliver;
  /** CHANNEL_ORDER, SOURCE_PROFILE, STEREO_CHECK (defaults when unset). */
  stereo?: StereoPolicy | undefined;
  /** LEVEL and its settings (off when unset). */
  level?: LevelPolicy | undefined;
  /** DTMF, DTMF_GUARD_MS, DTMF_MASK (off when unset). */
  dtmf?: DtmfPolicy | undefined;
  /** Records probe/render times, codecs, durations and split parts; none: not recorded. */
  metrics?: GatewayMetrics | undefined;
}

export interface IngestRequest {
  metadata: RecordingMetadata;
  audio: AudioInput;
  /** The remote party's leg (`remoteAttachment`), merged with `audio` into stereo. */
  remoteAudio?: AudioInput | undefined;
  stereoOptions?: StereoRequestOptions | undefined;
  workDir: string;
  callerAuthorization?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface PartDelivery {
  part: DeliverablePart;
  metadata: Record<string, unknown>;
  /** Imagicle's answer, when it answered. */
  upstream: UpstreamResponse | undefined;
  /** Why the part was not delivered when Imagicle did not answer (unreachable, timeout). */
  error: GatewayError | undefined;
  delivered: boolean;
  /** False for parts after a failed one: they were not attempted. */
  attempted: boolean;
}

export interface IngestResult {
  prepared: PreparedAudio;
  fitted: FittedAudio;
  deliveries: PartDelivery[];
  complete: boolean;
  deliverMs: number;
}

/**
 * The metadata Imagicle receives for one part: the caller's, with the
 * measured duration; for split recordings also the shifted start and
 * `(part k/n)` at the end of the notes.
 */
export function metadataForPart(metadata: RecordingMetadata, part: DeliverablePart): Record<string, unknown> {
  const sent: Record<string, unknown> = { ...metadata, duration: part.isoDuration };
  if (part.count > 1) {
    sent.startDateTime = shiftInstant(metadata.startDateTime, part.startOffsetSeconds);
    const notes = typeof metadata.notes === 'string' && metadata.notes.trim() !== '' ? `${metadata.notes} ` : '';
    sent.notes = `${notes}(part ${part.index}/${part.count})`;
  }
  return sent;
}

/** prepare → fit: everything before delivery. The spool runs it too (delivery/service.ts). */
export async function prepareForDelivery(
  request: Pick<IngestRequest, 'metadata' | 'audio' | 'remoteAudio' | 'stereoOptions' | 'workDir' | 'signal'>,
  deps: Omit<IngestDeps, 'deliver'>,
): Promise<{ prepared: PreparedAudio; fitted: FittedAudio }> {
  const prepared = await prepareCall(
    {
      attachment: request.audio,
      remoteAttachment: request.remoteAudio,
      options: request.stereoOptions,
      direction: request.metadata.direction,
    },
    request.workDir,
    { ...deps, stereo: deps.stereo ?? DEFAULT_STEREO_POLICY },
    request.signal,
  );
  const fitDeps = withInputSampleRate(deps, request.stereoOptions);
  const source = reencodeSource(prepared, request.audio);
  const fitted = await fitToLimit(prepared, source, request.workDir, fitDeps, request.signal);
  deps.metrics?.prepared(prepared);
  deps.metrics?.split(fitted.parts.length);
  return { prepared, fitted };
}
