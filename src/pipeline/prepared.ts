/**
 * What the pipeline takes in and hands on: a received audio file, and the
 * prepared audio Imagicle accepts, with the reports of the steps that made it.
 * Types only, so that every step can name them without importing another step.
 */
import type { FfmpegBinaries } from '../media/ffmpeg-tools.js';
import type { ProbeResult } from '../media/ffprobe.js';
import type { Container, OutputPolicy, Plan } from '../media/plan.js';
import type { OutputBounds } from './bounds.js';
import type { DtmfScan } from '../media/dtmf-wav.js';
import type { DtmfReport } from './dtmf-report.js';
import type { LevelReport } from './level-report.js';
import type { StereoReport } from './stereo-report.js';
import type { TruncatedPolicy, TruncationReport } from './truncation.js';

export interface PrepareLimits {
  maxDurationSeconds: number;
  maxChannelsIn: number;
  processTimeoutMs: number;
}

/** The binaries a render runs: tools, passed apart from the policy. */
export interface MediaTools {
  bins: FfmpegBinaries;
}

/** What the configuration decides about media: plain data, built once from the (frozen) configuration. */
interface MediaPolicy {
  output: OutputPolicy;
  limits: PrepareLimits;
  /** Re-encode even compliant input (the `compress` oversize policy), with this reason. */
  forceTranscode?: string | undefined;
  /** Sample rate of headerless VOX input (VOX_SAMPLE_RATE, or the request's inputSampleRate). */
  voxSampleRate?: number | undefined;
  /** MAX_EXPANSION and this job's disk reservation (bounds.ts); none: unbounded (CLI, unit tests). */
  bounds?: OutputBounds | undefined;
  /** TRUNCATED: a recording shorter than its container declares is delivered (reported) or refused; none: accept. */
  truncated?: TruncatedPolicy | undefined;
}

/** The tools and the policy, as the pipeline's steps take them. */
export interface PrepareDeps extends MediaTools, MediaPolicy {}

export interface AudioInput {
  path: string;
  originalName: string | undefined;
  extension: string;
  /** SHA-256 of the file when the intake computed it. */
  sha256?: string | undefined;
  /** Someone else's file (an import's, a watched folder's): never written, even to repair its header in place. */
  readOnly?: boolean | undefined;
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
  /** Stereo preparation (two legs merged, channels mapped, analysis): see prepare-call.ts. */
  stereo?: StereoReport | undefined;
  /** Level normalization per channel (LEVEL=speech): see pipeline/level.ts. */
  level?: LevelReport | undefined;
  /** DTMF tones found, and masked (DTMF=detect|mask): see pipeline/dtmf.ts. */
  dtmf?: DtmfReport | undefined;
  /** Tones found while this very file was written (internal: the DTMF step's input, never reported). */
  dtmfScan?: DtmfScan | undefined;
  /** Shorter than its container declares (pipeline/truncation.ts): both lengths. */
  truncated?: TruncationReport | undefined;
}
