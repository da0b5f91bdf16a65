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

/**
 * The key two uploads of the same recording by the same owner share. Another owner's upload of the same
 * recording is a new upload: it goes to Imagicle with its own credentials, never gets someone else's answer.
 */
export function dedupKey(owner: string, pbxCallId: unknown, audioHashes: readonly string[]): string {
  const callId = typeof pbxCallId === 'string' ? pbxCallId.trim() : '';
  return createHash('sha256')
    .update(JSON.stringify({ owner, pbxCallId: callId, audio: audioHashes }))
    .digest('hex');
}
