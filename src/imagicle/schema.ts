/**
 * Imagicle's recording metadata (`jsondata`) and error body, as zod schemas.
 * Unknown fields are kept (newer servers take e.g. `pbxInfo`) and passed through.
 */
import { z } from 'zod';
import { parseIsoDuration } from './duration.js';

/** ISO 8601 instant as .NET writes it: `2018-09-25T13:00:00.0000000Z`; offset optional. */
export const START_DATE_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/;

const startDateTime = z
  .string({ error: 'startDateTime is required and must be a string' })
  .refine((v) => START_DATE_TIME_RE.test(v) && !Number.isNaN(Date.parse(normaliseInstant(v))), {
    error: 'startDateTime must be an ISO 8601 date and time, e.g. 2018-09-25T13:00:00.0000000Z',
  });

const isoDuration = z
  .string({ error: 'duration must be an ISO 8601 duration string, e.g. PT1M30S' })
  .refine((v) => parseIsoDuration(v) !== null, { error: 'duration must be an ISO 8601 duration, e.g. PT1M30S' });

const requiredString = (name: string) =>
  z.string({ error: `${name} is required and must be a string` }).max(256, { error: `${name} is too long` });

const partySchema = z.looseObject({
  username: requiredString('localParty.username').min(1, { error: 'localParty.username must not be empty' }),
  phoneNumber: requiredString('localParty.phoneNumber'),
});

const remotePartySchema = z.looseObject({
  phoneNumber: requiredString('remoteParty.phoneNumber').optional(),
});

/** Metadata as the gateway accepts it: like Imagicle's, but `duration` is optional (it is always measured). */
export const recordingMetadataSchema = z.looseObject({
  startDateTime,
  duration: isoDuration.optional(),
  direction: z.union([z.literal(0), z.literal(1), z.literal(2)], {
    error: 'direction is required: 0 unknown, 1 incoming, 2 outgoing',
  }),
  localParty: partySchema,
  remoteParty: remotePartySchema.nullish(),
  pbxCallId: z.string({ error: 'pbxCallId must be a string' }).max(256).nullish(),
  notes: z.string({ error: 'notes must be a string' }).max(4096).nullish(),
  preserved: z.boolean({ error: 'preserved must be a boolean' }).nullish(),
});

/** Metadata as Imagicle itself requires it (the emulator's rule): `duration` is mandatory. */
export const upstreamMetadataSchema = recordingMetadataSchema.extend({ duration: isoDuration });

export type RecordingMetadata = z.infer<typeof recordingMetadataSchema>;
export type UpstreamMetadata = z.infer<typeof upstreamMetadataSchema>;

export const imagicleErrorSchema = z.object({ reason: z.number().int(), message: z.string() });

/** Renders a zod error as one readable sentence listing every problem. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.');
      const message = issue.code === 'unrecognized_keys' ? issue.message : issue.message;
      return path && !message.includes(path) ? `${path}: ${message}` : message;
    })
    .join('; ');
}

/** Makes an instant acceptable to Date.parse: trims sub-millisecond digits, assumes UTC without an offset. */
function normaliseInstant(value: string): string {
  const m = START_DATE_TIME_RE.exec(value);
  if (!m) return value;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = (frac ?? '').padEnd(3, '0').slice(0, 3);
  const offset =
    zone === undefined ? 'Z' : zone === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}${offset}`;
}
