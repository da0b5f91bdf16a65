/**
 * What stereo preparation reports (attached to PreparedAudio.stereo), and the
 * sentences it writes: which party is on which side, what the analysis found.
 */
import type { StereoAnalysis } from '../media/analysis.js';
import type { ChannelOrder, ChannelRoute, Party, SourceProfile } from '../media/channels.js';
import type { ProbeResult } from '../media/ffprobe.js';
import type { Mix } from '../media/merge.js';

/** What to do with fake stereo (both channels carry the same mix). */
export const STEREO_CHECKS = ['warn', 'collapse'] as const;
export type StereoCheck = (typeof STEREO_CHECKS)[number];
export type PartName = 'attachment' | 'remoteAttachment';
type Side = 'left' | 'right';
const SIDES: readonly Side[] = ['left', 'right'];
const PARTIES: readonly Party[] = ['local', 'remote'];

interface LegReport {
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

interface ChannelReport {
  channel: Side;
  party: Party;
  rmsDbfs: number | null;
  peakDbfs: number | null;
  speechShare: number;
  silent: boolean;
}

export type StereoSource = 'two-legs' | 'stereo-file' | 'selected-channels' | 'downmixed-channels' | 'duplicated-mono';

export interface StereoReport {
  /** What the stereo was made from. */
  source: StereoSource;
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

/** What one file's channels became: picked, downmixed, or a mono input duplicated. */
export function sourceOfFile(selected: boolean, inputChannels: number): StereoSource {
  if (selected) return 'selected-channels';
  if (inputChannels === 2) return 'stereo-file';
  return inputChannels > 2 ? 'downmixed-channels' : 'duplicated-mono';
}

/** The left and right sides of the mapping, in words. */
export function sidesFor(source: StereoSource, route: ChannelRoute | undefined): [string, string] {
  if (source === 'duplicated-mono') return ['the mono input', 'the mono input'];
  const downmix = 'downmix of all input channels';
  if (source === 'downmixed-channels' || !route) return [downmix, downmix];
  return [`local party ← input channel ${route.local + 1}`, `remote party ← input channel ${route.remote + 1}`];
}

/** Notes on a one-file source that explain what the analysis will see. */
export function sourceNotes(source: StereoSource, inputChannels: number): string[] {
  if (source === 'duplicated-mono') {
    return ['a mono input duplicated on both channels (CHANNELS=stereo): identical channels are expected'];
  }
  if (source === 'downmixed-channels') {
    return [
      `${inputChannels} input channels downmixed to stereo; ` +
        "send channels=L,R to pick the local and remote party's channels instead",
    ];
  }
  return [];
}

/** The plan's reason for a routed file. */
export function routeReason(route: ChannelRoute, outputMono: boolean, decidedBy: string): string {
  const [l, r] = [route.local + 1, route.remote + 1];
  return outputMono
    ? `input channels ${l} and ${r} mixed to mono (CHANNELS=mono)`
    : `input channel ${l} → left (local party), channel ${r} → right (remote party); ${decidedBy}`;
}

export interface DescribedLeg {
  part: PartName;
  party: Party;
  probe: ProbeResult;
  offsetMs: number;
}

/** "local party ← attachment (gsm, 8000 Hz, starts at 250 ms)". */
export function describeLeg(l: DescribedLeg): string {
  const audio = l.probe.audio;
  const details = [
    audio.codecName,
    `${audio.sampleRate} Hz`,
    ...(audio.channels > 1 ? [`${audio.channels} channels downmixed`] : []),
    ...(l.offsetMs ? [`starts at ${l.offsetMs} ms`] : []),
  ];
  return `${l.party} party ← ${l.part} (${details.join(', ')})`;
}

export interface MergedLeg extends DescribedLeg {
  samples: number;
  delaySamples: number;
}

/** The plan's reasons for two merged legs: who is where, and the silence that pads the shorter leg. */
export function mergeReasons(
  local: MergedLeg,
  remote: MergedLeg,
  mix: Mix,
  totalSamples: number,
  rate: number,
): string[] {
  const reasons = [
    mix === 'stereo'
      ? `two legs merged: left = ${describeLeg(local)}, right = ${describeLeg(remote)}`
      : `two legs mixed to mono (CHANNELS=mono): ${describeLeg(local)}; ${describeLeg(remote)}`,
  ];
  const [localEnd, remoteEnd] = [local.delaySamples + local.samples, remote.delaySamples + remote.samples];
  if (localEnd !== remoteEnd) {
    const shorter = localEnd < remoteEnd ? local : remote;
    const padding = (totalSamples - shorter.delaySamples - shorter.samples) / rate;
    reasons.push(`the ${shorter.party} party's leg is padded with ${padding.toFixed(3)} s of silence at the end`);
  }
  return reasons;
}

/** The analysis as the report shows it. */
export function analysisReport(analysis: StereoAnalysis, analysisMs: number): NonNullable<StereoReport['analysis']> {
  return {
    windowMs: analysis.windowMs,
    activityThresholdDbfs: analysis.activityThresholdDbfs,
    channels: analysis.channels.slice(0, 2).map((c, i) => ({ channel: SIDES[i]!, party: PARTIES[i]!, ...c })),
    correlation: analysis.correlation,
    levelDifferenceDb: analysis.levelDifferenceDb,
    fakeStereo: analysis.fakeStereo,
    silentChannels: analysis.silentChannels.map((i) => SIDES[i]!),
    silentRecording: analysis.silentRecording,
    analysisMs,
  };
}

/** What the analysis found worth a warning. */
export function findingsOf(analysis: StereoAnalysis, source: StereoSource): string[] {
  const findings: string[] = [];
  if (analysis.silentRecording) findings.push('the recording is silent on both channels');
  for (const i of analysis.silentChannels) {
    const speech = (analysis.channels[i]!.speechShare * 100).toFixed(1);
    findings.push(
      `the ${SIDES[i]} channel (${PARTIES[i]} party) is silent (speech in ${speech}% of the time): ` +
        "check that leg or the source's recording settings",
    );
  }
  if (analysis.fakeStereo && source !== 'duplicated-mono') {
    findings.push(
      `fake stereo: both channels carry the same audio (correlation ${analysis.correlation}, ` +
        `levels ${analysis.levelDifferenceDb} dB apart), so Voice Analytics cannot tell the parties apart`,
    );
  }
  return findings;
}
