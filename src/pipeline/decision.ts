/**
 * What the gateway would do with one file, without doing it: probe → plan
 * (the same inspectAudio() and planFor() a job runs), then the size the
 * output would have and what the oversize policy makes of it. `probe FILE`
 * prints it; nothing is written.
 */
import { stat } from 'node:fs/promises';
import type { ProbeResult } from '../media/ffprobe.js';
import { bytesPerSecond, type Plan } from '../media/plan.js';
import type { FitDeps } from './fit.js';
import { inspectAudio } from './prepare.js';
import type { AudioInput } from './prepared.js';

/** Room for a converted file's header. */
const HEADER_BYTES = 1024;

export interface Decision {
  plan: Plan;
  /** The output's size: the file itself when kept, else estimated from the probed length. */
  expectedBytes: number | undefined;
  maxPartBytes: number;
  /** What happens when it does not fit: none, split (into `parts`), reject, compress. */
  oversize: 'none' | 'split' | 'reject' | 'compress';
  /** Parts the output would be cut into (split at silences before the limit: an estimate). */
  parts: number | undefined;
}

export async function decide(
  input: AudioInput,
  deps: FitDeps,
  signal?: AbortSignal,
): Promise<{ probed: ProbeResult; decision: Decision }> {
  const { probed, plan } = await inspectAudio(input, deps, signal);
  const seconds = probed.durationSeconds;
  const expectedBytes =
    plan.action !== 'transcode'
      ? (await stat(input.path)).size
      : seconds === undefined
        ? undefined
        : Math.ceil(bytesPerSecond(plan.target) * seconds) + HEADER_BYTES;
  const limit = deps.maxPartBytes;
  const fits = expectedBytes === undefined || expectedBytes <= limit;
  return {
    probed,
    decision: {
      plan,
      expectedBytes,
      maxPartBytes: limit,
      oversize: fits ? 'none' : deps.oversize.policy,
      parts: fits
        ? expectedBytes === undefined
          ? undefined
          : 1
        : deps.oversize.policy === 'split'
          ? Math.ceil(expectedBytes! / limit)
          : undefined,
    },
  };
}

const kb = (bytes: number): string =>
  bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;

/** "transcode to pcm_mulaw WAV, 8000 Hz, mono", "pass through (compliant MP3)", … */
function describeAction(plan: Plan): string {
  switch (plan.action) {
    case 'pass-through':
      return `pass through byte for byte (${plan.container.toUpperCase()}, ${plan.channels} channel${plan.channels === 1 ? '' : 's'})`;
    case 'repair-header':
      return plan.rewrite
        ? `rewrite the ${plan.container.toUpperCase()} header, samples untouched`
        : `repair the ${plan.container.toUpperCase()} header's size fields in place, samples untouched`;
    case 'transcode': {
      const t = plan.target;
      const channels = t.channels === 1 ? 'mono' : t.channels === 2 ? 'stereo' : `${t.channels} channels`;
      const bitrate = t.mp3BitrateKbps ? `, ${t.mp3BitrateKbps} kbit/s` : '';
      return `transcode to ${t.format} (${t.codec} in ${t.container.toUpperCase()}), ${t.sampleRate} Hz, ${channels}${bitrate}`;
    }
  }
}

/** The readable form `probe FILE` prints. */
export function decisionText(file: string, probed: ProbeResult, d: Decision): string {
  const a = probed.audio;
  const length = probed.durationSeconds === undefined ? 'unknown length' : `${probed.durationSeconds.toFixed(3)} s`;
  const input = probed.rawHint
    ? `headerless ${probed.rawHint.description}`
    : `${a.codecName} in ${probed.formatName}, ${a.channels} channel${a.channels === 1 ? '' : 's'}, ${a.sampleRate} Hz`;
  const size =
    d.expectedBytes === undefined
      ? 'size unknown (no declared length)'
      : `${d.plan.action === 'transcode' ? 'about ' : ''}${kb(d.expectedBytes)}`;
  const parts =
    d.oversize === 'none'
      ? d.parts === undefined
        ? 'unknown'
        : '1 (fits in one file)'
      : d.oversize === 'split'
        ? `about ${d.parts}: more than MAX_PART_BYTES (${d.maxPartBytes} bytes), split at silences (OVERSIZE=split)`
        : d.oversize === 'reject'
          ? `none: more than MAX_PART_BYTES (${d.maxPartBytes} bytes), refused with 413 (OVERSIZE=reject)`
          : `re-encoded denser, split if still too big (OVERSIZE=compress, MAX_PART_BYTES ${d.maxPartBytes})`;
  const lines = [
    `file:     ${file}`,
    `input:    ${input}, ${length}`,
    `decision: ${describeAction(d.plan)}`,
    `output:   ${size}`,
    `parts:    ${parts}`,
    'reasons:',
    ...d.plan.reasons.map((r) => `  - ${r}`),
  ];
  return `${lines.join('\n')}\n`;
}
