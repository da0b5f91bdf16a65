/**
 * Recognising a recording its source sends twice: the same pbxCallId (or
 * none on both) and the same audio bytes (SHA-256 of the attachment, and of
 * remoteAttachment when there is one), within DEDUP_WINDOW.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export const DEDUP_ANSWERS = ['replay', 'conflict'] as const;
/** replay: the first upload's answer again (plus X-Duplicate-Of); conflict: 409 in Imagicle's shape. */
export type DedupAnswer = (typeof DEDUP_ANSWERS)[number];

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The metadata fields that tell one call from another (the recording metadata, or any object holding them). */
export interface CallIdentity {
  pbxCallId?: unknown;
  startDateTime?: unknown;
  direction?: unknown;
  duration?: unknown;
  localParty?: unknown;
  remoteParty?: unknown;
}

/**
 * The key two uploads of the same recording by the same owner share. Another owner's upload of the same
 * recording is a new upload: it goes to Imagicle with its own credentials, never gets someone else's answer.
 * Without a pbxCallId the bytes alone do not make two uploads one call (two calls can hold identical audio: the
 * same announcement, silence): the start time, parties, direction and declared duration are part of the key.
 * With one the key is what it always was, so keys stored before stay valid.
 */
export function dedupKey(owner: string, call: CallIdentity, audioHashes: readonly string[]): string {
  const callId = typeof call.pbxCallId === 'string' ? call.pbxCallId.trim() : '';
  const identity =
    callId !== ''
      ? { owner, pbxCallId: callId, audio: audioHashes }
      : {
          owner,
          pbxCallId: '',
          audio: audioHashes,
          call: [call.startDateTime, call.direction, call.duration, call.localParty, call.remoteParty],
        };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}
