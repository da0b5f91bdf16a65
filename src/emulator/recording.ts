/**
 * What the emulator keeps about each accepted recording (also its JSON sidecar).
 */
import { z } from 'zod';
import { upstreamMetadataSchema } from '../imagicle/schema.js';

const CODECS = ['pcm_u8', 'pcm_s16le', 'pcm_alaw', 'pcm_mulaw', 'mp3'] as const;
export type Codec = (typeof CODECS)[number];

const recordingFormatSchema = z.object({
  container: z.enum(['wav', 'mp3']),
  codec: z.enum(CODECS),
  channels: z.number().int(),
  sampleRate: z.number().int(),
  durationSeconds: z.number(),
});
export type RecordingFormat = z.infer<typeof recordingFormatSchema>;

export const storedRecordingSchema = z.object({
  id: z.string().min(1),
  receivedAt: z.string(),
  metadata: upstreamMetadataSchema,
  filename: z.string(),
  contentType: z.string(),
  bytes: z.number().int(),
  format: recordingFormatSchema,
  /** `basic:<user>`, `none`, or the scheme of another Authorization header; never the secret. */
  authorization: z.string().optional(),
});
export type StoredRecording = z.infer<typeof storedRecordingSchema>;

export type NewRecording = Omit<StoredRecording, 'id' | 'receivedAt'>;
