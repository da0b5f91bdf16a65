/** Reads `jsondata` with Imagicle's rules: reason 0 when it is not JSON, reason 1 when a field is wrong. */
import { badMetadata, badRequest } from '../errors.js';
import { describeIssues, recordingMetadataSchema, type RecordingMetadata } from '../imagicle/schema.js';

/** Deepest nesting of objects and arrays accepted in jsondata (Imagicle's metadata has 2 levels). */
const MAX_JSON_DEPTH = 32;

/**
 * The nesting depth of a JSON text, counted without parsing it (brackets outside strings): 20,000 levels of
 * `[` would otherwise overflow the stack in JSON.parse or in the validation after it, a 500.
 */
function jsonDepth(text: string, stopAbove = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      deepest = Math.max(deepest, ++depth);
      if (deepest > stopAbove) return deepest;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

export function parseMetadata(text: string | undefined): RecordingMetadata {
  if (text === undefined || text.trim() === '') throw badRequest('The jsondata part is missing or empty');
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw badRequest(`The jsondata part is nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
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
