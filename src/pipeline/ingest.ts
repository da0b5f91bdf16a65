/**
 * The use case: prepared audio + metadata → one upload to Imagicle.
 * Takes its dependencies; owns no I/O setup. Delivery is a function so that
 * retries and the spool can wrap it without this file changing.
 */
import { tooLarge } from '../errors.js';
import type { RecordingMetadata } from '../imagicle/schema.js';
import type { UploadInput, UpstreamResponse } from '../imagicle/client.js';
import { prepareAudio, type AudioInput, type PrepareDeps, type PreparedAudio } from './prepare.js';

export type Deliver = (upload: UploadInput) => Promise<UpstreamResponse>;

export interface IngestDeps extends PrepareDeps {
  deliver: Deliver;
  maxPartBytes: number;
}

export interface IngestRequest {
  metadata: RecordingMetadata;
  audio: AudioInput;
  workDir: string;
  callerAuthorization?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface IngestResult {
  prepared: PreparedAudio;
  metadataSent: Record<string, unknown>;
  upstream: UpstreamResponse;
  deliverMs: number;
}

/** The metadata Imagicle receives: the caller's, with the measured duration. */
export function metadataFor(metadata: RecordingMetadata, isoDuration: string): Record<string, unknown> {
  return { ...metadata, duration: isoDuration };
}

export function checkPartSize(prepared: PreparedAudio, maxPartBytes: number): void {
  if (prepared.bytes > maxPartBytes) {
    throw tooLarge(
      `The converted recording is ${prepared.bytes} bytes, more than the limit of ${maxPartBytes} bytes per file`,
    );
  }
}

export async function ingest(request: IngestRequest, deps: IngestDeps): Promise<IngestResult> {
  const prepared = await prepareAudio(request.audio, request.workDir, deps, request.signal);
  checkPartSize(prepared, deps.maxPartBytes);
  const metadataSent = metadataFor(request.metadata, prepared.isoDuration);
  const started = performance.now();
  const upstream = await deps.deliver({
    metadata: metadataSent,
    audioPath: prepared.path,
    audioBytes: prepared.bytes,
    contentType: prepared.contentType,
    filename: prepared.filename,
    callerAuthorization: request.callerAuthorization,
    signal: request.signal,
  });
  return { prepared, metadataSent, upstream, deliverMs: performance.now() - started };
}
