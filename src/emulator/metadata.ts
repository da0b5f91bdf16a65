/**
 * The `jsondata` part as Imagicle reads it: JSON (reason 0 if not), then
 * Imagicle's metadata rules, duration mandatory (reason 1 listing every problem).
 */
import { badMetadata, badRequest } from '../errors.js';
import { describeIssues, upstreamMetadataSchema, type UpstreamMetadata } from '../imagicle/schema.js';
import type { ReceivedJson } from './intake.js';

export function parseJsonData(part: ReceivedJson): UpstreamMetadata {
  if (part.truncated) throw badRequest('The jsondata part is too large');
  let value: unknown;
  try {
    value = JSON.parse(part.text);
  } catch (error) {
    throw badRequest('The jsondata part is not valid JSON', error);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('The jsondata part must be a JSON object');
  }
  const result = upstreamMetadataSchema.safeParse(value);
  if (!result.success) throw badMetadata(`Invalid recording metadata: ${describeIssues(result.error)}`);
  return result.data;
}
