/**
 * Imagicle's rules for an MP3 attachment: MPEG Layer III, at most two
 * channels, and a declared duration within one frame of the measured one
 * (decoders differ on whether they remove the encoder delay and padding).
 */
import { badAudio } from '../errors.js';
import { formatIsoDuration } from '../imagicle/duration.js';
import { MAX_LEADING_ID3V2_TAGS, type Mp3Info } from '../media/mp3.js';
import type { RecordingFormat } from './recording.js';

const EPSILON = 1e-9;

export function checkMp3(info: Mp3Info, declaredSeconds: number): RecordingFormat {
  if (info.layer !== 3) throw badAudio(`MPEG layer ${info.layer} audio is not accepted; only MP3 (layer III) is`);
  if (info.frames === 0 || info.sampleRate <= 0) throw badAudio('The MP3 holds no audio frames');
  if (info.id3v2Tags > MAX_LEADING_ID3V2_TAGS) {
    throw badAudio(`The MP3 starts with ${info.id3v2Tags} ID3v2 tags; at most ${MAX_LEADING_ID3V2_TAGS} are accepted`);
  }
  if (info.channels > 2) throw badAudio(`The MP3 has ${info.channels} channels; at most 2 are accepted`);
  const frameSeconds = info.samplesPerFrame / info.sampleRate;
  if (Math.abs(info.durationSeconds - declaredSeconds) > frameSeconds + EPSILON) {
    throw badAudio(
      `The declared duration (${formatIsoDuration(declaredSeconds)}) does not match the audio ` +
        `(${info.durationSeconds.toFixed(6)} s; one frame is ${(frameSeconds * 1000).toFixed(3)} ms)`,
    );
  }
  return {
    container: 'mp3',
    codec: 'mp3',
    channels: info.channels,
    sampleRate: info.sampleRate,
    durationSeconds: info.durationSeconds,
  };
}
