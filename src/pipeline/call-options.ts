/**
 * The per-request stereo options (and the sample rate of a headerless VOX
 * input, which travels with them), read from the form's text fields or from
 * the query string (for clients that can only send Imagicle's two parts).
 * Every problem is reported at once, as reason 0 (InvalidData).
 */
import { z } from 'zod';
import { badRequest } from '../errors.js';
import { CHANNEL_ORDERS, parseChannelSelection, SOURCE_PROFILES } from '../media/channels.js';
import { DTMF_MODES } from '../media/dtmf-policy.js';
import { LEVEL_MODES } from '../media/level.js';
import type { StereoRequestOptions } from './stereo-policy.js';

/** The form's text fields (and query parameters) for stereo preparation. */
export const STEREO_FIELDS = [
  'channelOrder',
  'sourceProfile',
  'channels',
  'localOffsetMs',
  'remoteOffsetMs',
  'level',
  'inputSampleRate',
  'dtmf',
] as const;
type StereoField = (typeof STEREO_FIELDS)[number];

/** The second audio part of a two-leg upload: the remote party's leg. */
export const REMOTE_ATTACHMENT = 'remoteAttachment';

const offset = (name: string, maxMs: number) =>
  z
    .string()
    .regex(/^\s*\d{1,9}\s*$/, { error: `${name} must be a whole number of milliseconds, 0 or more` })
    .transform(Number)
    .refine((v) => v <= maxMs, { error: `${name} must be at most ${maxMs} (the longest recording accepted)` });

const INPUT_RATE_PROBLEM = 'inputSampleRate must be a whole number of Hz between 4000 and 48000';
/** The options' schema (exported for the OpenAPI document, which is generated from it). */
export function stereoOptionsSchema(maxOffsetMs: number) {
  return schemaFor(maxOffsetMs);
}

function schemaFor(maxOffsetMs: number) {
  return z.object({
    channelOrder: z
      .enum(CHANNEL_ORDERS, { error: `channelOrder must be one of ${CHANNEL_ORDERS.join(', ')}` })
      .optional(),
    sourceProfile: z
      .enum(SOURCE_PROFILES, { error: `sourceProfile must be one of ${SOURCE_PROFILES.join(', ')}` })
      .optional(),
    channels: z
      .string()
      .transform((text, ctx) => {
        const parsed = parseChannelSelection(text);
        if (typeof parsed === 'string') {
          ctx.addIssue({ code: 'custom', message: parsed });
          return z.NEVER;
        }
        return parsed;
      })
      .optional(),
    localOffsetMs: offset('localOffsetMs', maxOffsetMs).optional(),
    remoteOffsetMs: offset('remoteOffsetMs', maxOffsetMs).optional(),
    level: z.enum(LEVEL_MODES, { error: `level must be one of ${LEVEL_MODES.join(', ')}` }).optional(),
    // The rate of a headerless input that does not say it (Dialogic VOX); the same range as VOX_SAMPLE_RATE.
    inputSampleRate: z
      .string()
      .regex(/^\s*\d{4,5}\s*$/, { error: INPUT_RATE_PROBLEM })
      .transform(Number)
      .refine((v) => v >= 4000 && v <= 48000, { error: INPUT_RATE_PROBLEM })
      .optional(),
    dtmf: z.enum(DTMF_MODES, { error: `dtmf must be one of ${DTMF_MODES.join(', ')}` }).optional(),
  });
}

/**
 * Reads the options from the form fields and the query string. A name given
 * in both places must have the same value.
 */
export function parseStereoOptions(
  fields: Readonly<Record<string, string>>,
  query: Readonly<Record<string, unknown>>,
  maxOffsetMs: number,
): StereoRequestOptions {
  const problems: string[] = [];
  const raw: Partial<Record<StereoField, string>> = {};
  for (const name of STEREO_FIELDS) {
    const fromForm = fields[name];
    const fromQuery = query[name];
    if (fromQuery !== undefined && typeof fromQuery !== 'string') {
      problems.push(`${name} appears more than once in the query string`);
      continue;
    }
    if (fromForm !== undefined && fromQuery !== undefined && fromForm.trim() !== fromQuery.trim()) {
      problems.push(
        `${name} is "${printable(fromForm)}" in the form but "${printable(fromQuery)}" in the query string`,
      );
      continue;
    }
    const value = (fromForm ?? fromQuery)?.trim();
    if (value !== undefined && value !== '') raw[name] = value;
  }
  const parsed = schemaFor(maxOffsetMs).safeParse(raw);
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => issue.message));
  if (problems.length > 0 || !parsed.success) throw badRequest(`Invalid stereo options: ${problems.join('; ')}`);
  return parsed.data;
}

function printable(value: string): string {
  return value
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/"/g, "'")
    .slice(0, 40);
}
