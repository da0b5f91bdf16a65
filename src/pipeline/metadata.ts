/** Reads `jsondata` with Imagicle's rules: reason 0 when it is not JSON, reason 1 when a field is wrong. */
import { badMetadata, badRequest } from '../errors.js';
import { describeIssues, recordingMetadataSchema, type RecordingMetadata } from '../imagicle/schema.js';

export function parseMetadata(text: string | undefined): RecordingMetadata {
  if (text === undefined || text.trim() === '') throw badRequest('The jsondata part is missing or empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('The jsondata part is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('The jsondata part must be a JSON object');
  }
  const parsed = recordingMetadataSchema.safeParse(value);
  if (!parsed.success) throw badMetadata(`Invalid recording metadata: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
