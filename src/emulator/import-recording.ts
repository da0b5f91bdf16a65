/**
 * One upload, judged as Imagicle would: credentials (401), the form
 * (reason 0), the metadata (reason 1), the audio (reason 2); then the
 * recording is stored. The received file never outlives a refusal.
 */
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { badRequest, GatewayError } from '../errors.js';
import { parseIsoDuration } from '../imagicle/duration.js';
import { checkAudio } from './audio-check.js';
import { describeAuthorization, isAuthorized, type Credentials } from './auth.js';
import { receiveUpload, type ReceivedUpload } from './intake.js';
import { parseJsonData } from './metadata.js';
import type { StoredRecording } from './recording.js';
import { drain } from './respond.js';
import type { RecordingStore } from './store.js';

const MAX_JSONDATA_BYTES = 1024 * 1024;

export interface ImportSettings {
  store: RecordingStore;
  credentials: Credentials | undefined;
  maxFileBytes: number;
}

export const unauthorized = (): GatewayError =>
  new GatewayError('UNAUTHORIZED', 'Authentication is required: HTTP Basic with a valid user and password', {
    headers: { 'WWW-Authenticate': 'Basic realm="Imagicle", charset="UTF-8"' },
  });

/** The two parts, or reason 0 naming what is wrong with the form. */
function requireParts(upload: ReceivedUpload): Required<Omit<ReceivedUpload, 'problems'>> {
  if (upload.problems.length > 0) throw badRequest(`Invalid multipart form: ${upload.problems.join('; ')}`);
  const { jsondata, attachment } = upload;
  if (!jsondata) throw badRequest('The jsondata part is missing');
  if (!attachment) throw badRequest('The attachment part is missing');
  if (!attachment.filename) throw badRequest('The attachment part has no filename');
  return { jsondata, attachment };
}

export async function importRecording(req: IncomingMessage, settings: ImportSettings): Promise<StoredRecording> {
  const authorization = req.headers.authorization;
  if (!isAuthorized(authorization, settings.credentials)) {
    await drain(req);
    throw unauthorized();
  }
  const tempPath = settings.store.tempPath();
  try {
    const upload = await receiveUpload(req, req.headers, tempPath, {
      maxFileBytes: settings.maxFileBytes,
      maxJsonBytes: MAX_JSONDATA_BYTES,
    });
    const { jsondata, attachment } = requireParts(upload);
    const metadata = parseJsonData(jsondata);
    const declaredSeconds = parseIsoDuration(metadata.duration);
    if (declaredSeconds === null) throw badRequest('duration is not an ISO 8601 duration'); // the schema already ensures it
    const format = await checkAudio({ path: tempPath, ...attachment }, declaredSeconds, settings.maxFileBytes);
    return await settings.store.add(tempPath, {
      metadata,
      filename: attachment.filename ?? '',
      contentType: attachment.contentType,
      bytes: attachment.bytes,
      format,
      authorization: describeAuthorization(authorization),
    });
  } finally {
    await rm(tempPath, { force: true });
  }
}
