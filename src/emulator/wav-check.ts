/**
 * Imagicle's rules for a WAV attachment: a plain header (tag 1 with 8/16-bit
 * samples, 6 A-law, 7 u-law; no WAVE_FORMAT_EXTENSIBLE), at most two
 * channels, a self-consistent fmt chunk (block align = channels × bytes per
 * sample, byte rate = block align × rate, a rate of 8000..48000 Hz),
 * consistent RIFF/data sizes, and a declared duration within 1 ms of the
 * measured one.
 */
import { badAudio } from '../errors.js';
import { formatIsoDuration } from '../imagicle/duration.js';
import { MAX_COMPLIANT_RATE, MIN_COMPLIANT_RATE, wavDurationSeconds, type WavInfo } from '../media/wav.js';
import type { Codec, RecordingFormat } from './recording.js';

const WAV_TOLERANCE_SECONDS = 0.001;
/** Absorbs float noise so that exactly 1 ms apart still passes. */
const EPSILON = 1e-9;

function describeSamples(info: WavInfo): string {
  const tag = info.effectiveFormatTag;
  if (tag === 1) return `${info.bitsPerSample}-bit PCM`;
  if (tag === 3) return `${info.bitsPerSample}-bit IEEE float`;
  if (tag === 6) return 'A-law';
  if (tag === 7) return 'u-law';
  return `format 0x${tag.toString(16).padStart(4, '0')}`;
}

function codecOf(info: WavInfo): Codec {
  const tag = info.formatTag;
  const hex = `0x${tag.toString(16).padStart(4, '0')}`;
  if (tag === 0xfffe) {
    throw badAudio(
      `WAVE_FORMAT_EXTENSIBLE headers are not accepted (this one holds ${describeSamples(info)}); ` +
        'use a plain format tag: 1 (8/16-bit PCM), 6 (A-law) or 7 (u-law)',
    );
  }
  if (tag === 3) throw badAudio('IEEE float WAV is not accepted; use 8/16-bit PCM, A-law or u-law');
  if (tag === 1) {
    if (info.bitsPerSample === 8 && info.blockAlign === info.channels) return 'pcm_u8';
    if (info.bitsPerSample === 16 && info.blockAlign === info.channels * 2) return 'pcm_s16le';
    if (info.bitsPerSample === 8 || info.bitsPerSample === 16) {
      throw badAudio(
        `The WAV header is inconsistent: block align ${info.blockAlign} ` +
          `for ${info.channels} channel(s) of ${info.bitsPerSample}-bit PCM`,
      );
    }
    throw badAudio(`${info.bitsPerSample}-bit PCM WAV is not accepted; use 8 or 16 bits`);
  }
  if (tag === 6 || tag === 7) {
    if (info.bitsPerSample !== 8 || info.blockAlign !== info.channels) {
      throw badAudio(`${tag === 6 ? 'A-law' : 'u-law'} WAV must have 8 bits per sample`);
    }
    return tag === 6 ? 'pcm_alaw' : 'pcm_mulaw';
  }
  throw badAudio(`WAV format tag ${hex} is not accepted; use PCM (1), A-law (6) or u-law (7)`);
}

export function checkWav(info: WavInfo, declaredSeconds: number): RecordingFormat {
  const codec = codecOf(info);
  if (info.channels > 2) throw badAudio(`The WAV has ${info.channels} channels; at most 2 are accepted`);
  if (info.sampleRate < MIN_COMPLIANT_RATE || info.sampleRate > MAX_COMPLIANT_RATE) {
    throw badAudio(
      `The WAV sample rate ${info.sampleRate} Hz is not accepted; ` +
        `use ${MIN_COMPLIANT_RATE} to ${MAX_COMPLIANT_RATE} Hz`,
    );
  }
  if (info.byteRate !== info.blockAlign * info.sampleRate) {
    throw badAudio(
      `The WAV header is inconsistent: byte rate ${info.byteRate}, ` +
        `but block align ${info.blockAlign} × ${info.sampleRate} Hz`,
    );
  }
  if (!info.sizesConsistent) {
    throw badAudio(
      `The WAV header sizes are inconsistent (RIFF size ${info.declaredRiffSize}, data size ${info.declaredDataSize}, ` +
        `file ${info.fileSize} bytes with ${info.dataBytes} bytes of whole sample frames)`,
    );
  }
  const durationSeconds = wavDurationSeconds(info);
  if (Math.abs(durationSeconds - declaredSeconds) > WAV_TOLERANCE_SECONDS + EPSILON) {
    throw badAudio(
      `The declared duration (${formatIsoDuration(declaredSeconds)}) does not match the audio ` +
        `(${info.frames} frames at ${info.sampleRate} Hz = ${durationSeconds.toFixed(6)} s)`,
    );
  }
  return { container: 'wav', codec, channels: info.channels, sampleRate: info.sampleRate, durationSeconds };
}
