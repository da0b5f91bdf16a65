/**
 * A recording cut short (a copy that stopped, a recorder that crashed) still decodes: to what is there. Where the
 * container declares its length, that is compared with what decoded, so that a 10-minute call is not delivered
 * silently as a 2-second one (docs/security.md, finding #15). The declared lengths read:
 *
 * - WAV: the `fact` chunk's sample count (compressed formats), else the `data` chunk's size over the byte rate
 *   (0 and 0xFFFFFFFF, what streaming recorders write, declare nothing);
 * - MP3: the Xing/Info or VBRI tag's frame count;
 * - FLAC: STREAMINFO's total samples;
 * - MP4/M4A/MOV and Matroska/WebM: the duration in the header, as ffprobe reads it.
 *
 * Ogg, raw telephony formats and the rest declare no length; nothing is checked for them.
 */
import { badAudio } from '../errors.js';
import type { ProbeResult } from '../media/ffprobe.js';
import { readFlacStreamInfo } from '../media/flac.js';
import type { Mp3Info } from '../media/mp3.js';
import type { WavInfo } from '../media/wav.js';

export const TRUNCATED_POLICIES = ['accept', 'reject'] as const;
export type TruncatedPolicy = (typeof TRUNCATED_POLICIES)[number];

export interface DeclaredLength {
  seconds: number;
  /** What declared it, for the report and the message. */
  by: string;
}

export interface TruncationReport {
  declaredSeconds: number;
  decodedSeconds: number;
  declaredBy: string;
}

/** A shortfall counts when it is more than both of these: rounding, priming and padding never reach them. */
const MIN_SHORTFALL_SECONDS = 1;
const MIN_SHORTFALL_RATIO = 0.02;

/** 0 and 0xFFFFFFFF: "unknown" in a streamed WAV. */
const UNKNOWN_WAV_SIZES = new Set([0, 0xffffffff]);

export async function declaredLength(
  path: string,
  probed: ProbeResult,
  wav: WavInfo | null,
  mp3: Mp3Info | null,
): Promise<DeclaredLength | undefined> {
  if (wav) {
    if (wav.factSamples !== undefined && wav.factSamples > 0 && wav.effectiveFormatTag !== 1 && wav.sampleRate > 0) {
      return { seconds: wav.factSamples / wav.sampleRate, by: 'the WAV fact chunk' };
    }
    if (!UNKNOWN_WAV_SIZES.has(wav.declaredDataSize) && wav.byteRate > 0) {
      return { seconds: wav.declaredDataSize / wav.byteRate, by: 'the WAV data chunk size' };
    }
    return undefined;
  }
  if (mp3) {
    if (mp3.declaredFrames === undefined || mp3.declaredFrames === 0) return undefined;
    return {
      seconds: (mp3.declaredFrames * mp3.samplesPerFrame) / mp3.sampleRate,
      by: 'the MP3 Xing/VBRI frame count',
    };
  }
  const format = probed.formatName;
  if (format === 'flac') {
    const info = await readFlacStreamInfo(path);
    if (!info || info.totalSamples === 0) return undefined;
    return { seconds: info.totalSamples / info.sampleRate, by: 'the FLAC total samples' };
  }
  if (probed.durationSeconds === undefined) return undefined;
  if (/(^|,)(mov|mp4|m4a)(,|$)/.test(format)) return { seconds: probed.durationSeconds, by: 'the MP4 header' };
  if (/(^|,)(matroska|webm)(,|$)/.test(format)) {
    return { seconds: probed.durationSeconds, by: 'the Matroska header' };
  }
  return undefined;
}

/** The report when what decoded falls short of the declared length by more than 1 s and 2 %; else undefined. */
export function truncationOf(
  declared: DeclaredLength | undefined,
  decodedSeconds: number,
): TruncationReport | undefined {
  if (!declared) return undefined;
  const shortfall = declared.seconds - decodedSeconds;
  if (shortfall <= MIN_SHORTFALL_SECONDS || shortfall <= declared.seconds * MIN_SHORTFALL_RATIO) return undefined;
  const round = (s: number): number => Math.round(s * 1000) / 1000;
  return { declaredSeconds: round(declared.seconds), decodedSeconds: round(decodedSeconds), declaredBy: declared.by };
}

/** TRUNCATED=reject: the refusal (400, reason 2). */
export function truncatedError(report: TruncationReport): Error {
  return badAudio(
    `The recording is truncated: ${report.declaredBy} declares ${report.declaredSeconds} s, ` +
      `but only ${report.decodedSeconds} s of audio are in the file (TRUNCATED=reject)`,
  );
}
