/**
 * Where an imported file's metadata comes from, and how the sources combine:
 * manifest row > sidecar `<base>.json` > file-name pattern > `--defaults`.
 * Each source gives a partial `jsondata`; the merge is field by field (the
 * parties too), then the result is checked with the gateway's own schema.
 * Start times without an offset are read in `--timezone` and sent in UTC.
 */
import { DateTime } from 'luxon';
import {
  describeIssues,
  recordingMetadataSchema,
  START_DATE_TIME_RE,
  type RecordingMetadata,
} from '../imagicle/schema.js';
import { PatternError, type CompiledPattern } from './pattern.js';
import { parseBoundedJson, UnsafeFileError } from '../safe-fs.js';

/** A partial jsondata (objects for the parties), as one source gives it. */
export type MetadataLayer = Record<string, unknown>;

export type Resolved = { ok: true; metadata: RecordingMetadata } | { ok: false; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Layers from lowest to highest precedence; a later one wins field by field. */
export function mergeLayers(layers: readonly (MetadataLayer | undefined)[]): MetadataLayer {
  const merged: MetadataLayer = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      const before = merged[key];
      merged[key] = isObject(before) && isObject(value) ? { ...before, ...value } : value;
    }
  }
  return merged;
}

/** An instant with no offset is wall-clock time in `timezone`; it is sent as UTC with milliseconds. */
function normaliseStart(value: unknown, timezone: string): unknown {
  if (typeof value !== 'string') return value;
  const m = START_DATE_TIME_RE.exec(value.trim());
  if (!m || m[8] !== undefined) return value;
  const local = DateTime.fromISO(value.trim(), { zone: timezone });
  return local.isValid ? local.toUTC().toISO() : value;
}

export function resolveMetadata(layers: readonly (MetadataLayer | undefined)[], timezone: string): Resolved {
  const merged = mergeLayers(layers);
  if (merged.startDateTime !== undefined) merged.startDateTime = normaliseStart(merged.startDateTime, timezone);
  const parsed = recordingMetadataSchema.safeParse(merged);
  if (!parsed.success) return { ok: false, reason: `invalid metadata: ${describeIssues(parsed.error)}` };
  return { ok: true, metadata: parsed.data };
}

/** What a pattern match contributes; throws PatternError when a matched value does not parse. */
export function patternLayer(
  pattern: CompiledPattern,
  relativePath: string,
  timezone: string,
): MetadataLayer | undefined {
  const withoutExtension = relativePath.replace(/\.[^./\\]*$/, '');
  const m = pattern.match(withoutExtension, timezone);
  if (!m) return undefined;
  const layer: MetadataLayer = {};
  if (m.start) layer.startDateTime = m.start.toUTC().toISO();
  if (m.direction !== undefined) layer.direction = m.direction;
  const local: Record<string, string> = {};
  if (m.fields.local !== undefined) local.phoneNumber = m.fields.local;
  if (m.fields.localName !== undefined) local.username = m.fields.localName;
  if (Object.keys(local).length > 0) layer.localParty = local;
  const remote: Record<string, string> = {};
  if (m.fields.remote !== undefined) remote.phoneNumber = m.fields.remote;
  if (m.fields.remoteName !== undefined) remote.username = m.fields.remoteName;
  if (Object.keys(remote).length > 0) layer.remoteParty = remote;
  if (m.fields.callId !== undefined) layer.pbxCallId = m.fields.callId;
  return layer;
}

export { PatternError };

const DIRECTION_WORDS: Record<string, number> = {
  unknown: 0,
  in: 1,
  incoming: 1,
  inbound: 1,
  out: 2,
  outgoing: 2,
  outbound: 2,
};

/** 0/1/2 or a word; anything else is kept as it is, for the schema to report. */
export function parseDirection(value: unknown): unknown {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return value;
  const text = value.trim().toLowerCase();
  if (/^[012]$/.test(text)) return Number(text);
  return DIRECTION_WORDS[text] ?? value;
}

export function parseBoolean(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(text)) return true;
  if (['false', '0', 'no'].includes(text)) return false;
  return value;
}

/**
 * The gateway's own options beside the jsondata in a sidecar of the form `{"jsondata": {…}, "dtmf": "mask"}`
 * (issue 22): as form fields, for parseStereoOptions. A bare jsondata holds none (its fields go to Imagicle).
 */
export function sidecarOptions(text: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {};
  }
  if (!isObject(value) || !isObject(value.jsondata) || value.dtmf === undefined) return {};
  return { dtmf: String(value.dtmf) };
}

/** The sidecar's content: the jsondata itself, or an object holding it under `jsondata`. */
export function sidecarLayer(text: string, maxDepth = 32): MetadataLayer {
  let value: unknown;
  try {
    value = parseBoundedJson(text, maxDepth);
  } catch (error) {
    if (error instanceof UnsafeFileError) throw new Error(`the sidecar ${error.message}`);
    throw new Error('the sidecar is not valid JSON');
  }
  if (isObject(value) && isObject(value.jsondata)) return value.jsondata;
  if (!isObject(value)) throw new Error('the sidecar must hold a JSON object (the jsondata)');
  return value;
}
