/**
 * What a call asks for and the stereo settings it runs under: the request's
 * options, the configured policy (CHANNEL_ORDER, SOURCE_PROFILE,
 * STEREO_CHECK) and the call's inputs. Types and defaults only.
 */
import type { ChannelOrder, ChannelRoute, Direction, SourceProfile } from '../media/channels.js';
import type { DtmfMode, DtmfPolicy } from '../media/dtmf-policy.js';
import type { LevelMode, LevelPolicy } from '../media/level.js';
import type { AudioInput, PrepareDeps } from './prepared.js';
import type { StereoCheck } from './stereo-report.js';

/** What one request asks for (form fields or query string; see call-options.ts). */
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
  /** DTMF detection and masking for this request; wins over DTMF. */
  dtmf?: DtmfMode | undefined;
  /** Sample rate of a headerless input that does not say (Dialogic VOX): overrides VOX_SAMPLE_RATE. */
  inputSampleRate?: number | undefined;
}

export interface StereoPolicy {
  channelOrder: ChannelOrder;
  sourceProfile: SourceProfile;
  check: StereoCheck;
}

export const DEFAULT_STEREO_POLICY: Readonly<StereoPolicy> = {
  channelOrder: 'local-left',
  sourceProfile: 'generic',
  check: 'warn',
};

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
  /** DTMF, DTMF_GUARD_MS, DTMF_MASK (off when unset). */
  dtmf?: DtmfPolicy | undefined;
}
