/**
 * Checks a stored attachment the way Imagicle would: its Content-Type must be
 * one Imagicle accepts and agree with the content, the file must fit the size
 * limit, and the content must pass the WAV or MP3 rules. Every refusal is a
 * 400 with reason 2.
 */
import { badAudio } from '../errors.js';
import { readMp3Info } from '../media/mp3.js';
import { readWavInfo } from '../media/wav.js';
import { ACCEPTED_CONTENT_TYPES, containerForContentType } from './content-type.js';
import { checkMp3 } from './mp3-check.js';
import type { RecordingFormat } from './recording.js';
import { checkWav } from './wav-check.js';

export interface AttachmentFacts {
  path: string;
  contentType: string;
  bytes: number;
  /** More bytes arrived than the limit allows. */
  truncated: boolean;
}

export async function checkAudio(
  attachment: AttachmentFacts,
  declaredSeconds: number,
  maxFileBytes: number,
): Promise<RecordingFormat> {
  if (attachment.truncated || attachment.bytes > maxFileBytes) {
    throw badAudio(`The audio file is larger than ${maxFileBytes} bytes`);
  }
  const container = containerForContentType(attachment.contentType);
  if (container === null) {
    throw badAudio(
      `The attachment Content-Type '${attachment.contentType}' is not accepted; use one of ${ACCEPTED_CONTENT_TYPES.join(', ')}`,
    );
  }
  const wav = await readWavInfo(attachment.path);
  if (container === 'wav') {
    if (wav) return checkWav(wav, declaredSeconds);
    const mp3 = await readMp3Info(attachment.path);
    throw badAudio(
      mp3 && mp3.frames > 0
        ? `The attachment is MPEG audio but its Content-Type '${attachment.contentType}' says WAV`
        : 'The attachment is not a WAV file',
    );
  }
  if (wav) throw badAudio(`The attachment is a WAV file but its Content-Type '${attachment.contentType}' says MP3`);
  const mp3 = await readMp3Info(attachment.path);
  if (!mp3) throw badAudio('The attachment is not an MP3 file');
  return checkMp3(mp3, declaredSeconds);
}
