/**
 * Pure rules of reconciliation: which list query finds the candidates for a
 * part that was sent, and whether a recording's detail is that part.
 *
 * A detail matches when it has the part's start instant, direction and local
 * number (the list filtered on them, but a server that ignores a filter must
 * not make us claim another call), its duration (the value sent, compared as
 * a duration: `PT90S` is `PT1M30S`), and, as far as they were sent, its
 * remote number, pbxCallId and notes. Instants are compared as instants:
 * `…13:00:00.0000000Z` and `…14:00:00+01:00` are one. A field we sent that
 * the detail lacks is a mismatch: "not there" costs a duplicate, a wrong
 * "there" would lose the recording.
 */
import { z } from 'zod';
import { parseIsoDuration } from './duration.js';
import { sameInstant } from './instant.js';

/** What identifies a part, from the metadata sent for it. */
export interface SentPart {
  startDateTime: string;
  duration: string;
  direction: number;
  localNumber: string;
  remoteNumber: string | undefined;
  pbxCallId: string | undefined;
  notes: string | undefined;
}

const text = z.string().nullish();

/** The metadata sent, as far as reconciliation reads it (the upload's own schema already checked it). */
const sentSchema = z.looseObject({
  startDateTime: z.string(),
  duration: z.string(),
  direction: z.number(),
  localParty: z.looseObject({ phoneNumber: z.string() }),
  remoteParty: z.looseObject({ phoneNumber: text }).nullish(),
  pbxCallId: text,
  notes: text,
});

/** The detail fields compared (`GET …/Recordings/{id}`); other fields are ignored. */
export const detailSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  referenceNumber: z.union([z.string(), z.number()]).nullish(),
  startTime: z.string(),
  duration: z.string(),
  direction: z.union([z.number(), z.string()]),
  localPartyNumber: text,
  remotePartyNumber: text,
  pbxCallId: text,
  note: text,
});
export type RecordingDetailFields = z.infer<typeof detailSchema>;

/** The list (`GET …/Recordings`): each entry's id and reference number, and what filters it before its detail. */
export const listSchema = z.looseObject({
  totalCount: z.number().int().min(0).optional(),
  recordings: z.array(
    z.looseObject({
      id: z.union([z.string().min(1), z.number()]).transform(String),
      referenceNumber: z.union([z.string(), z.number()]).nullish(),
      startTime: z.string().nullish(),
      direction: z.union([z.number(), z.string()]).nullish(),
      localPartyNumber: z.string().nullish(),
    }),
  ),
});
export type ListedEntry = z.infer<typeof listSchema>['recordings'][number];

/**
 * False when a list entry shows it is another recording (a server that ignored a filter must not make us read
 * every detail): only the fields the entry has are compared.
 */
export function mayBePart(sent: SentPart, entry: ListedEntry): boolean {
  if (entry.startTime !== null && entry.startTime !== undefined && !sameInstant(sent.startDateTime, entry.startTime))
    return false;
  if (entry.direction !== null && entry.direction !== undefined && Number(entry.direction) !== sent.direction)
    return false;
  return (
    entry.localPartyNumber === null ||
    entry.localPartyNumber === undefined ||
    entry.localPartyNumber === sent.localNumber
  );
}

const given = (value: string | null | undefined): string | undefined =>
  value === null || value === undefined || value === '' ? undefined : value;

/** The identifying fields of the metadata sent, or undefined when it lacks what every upload carries. */
export function sentPartOf(metadata: Record<string, unknown>): SentPart | undefined {
  const parsed = sentSchema.safeParse(metadata);
  if (!parsed.success) return undefined;
  const m = parsed.data;
  return {
    startDateTime: m.startDateTime,
    duration: m.duration,
    direction: m.direction,
    localNumber: m.localParty.phoneNumber,
    remoteNumber: given(m.remoteParty?.phoneNumber),
    pbxCallId: given(m.pbxCallId),
    notes: given(m.notes),
  };
}

/** The list's filters for a part: its start instant as sent (the server reads it as it read the upload). */
export function candidateQuery(sent: SentPart, page: number, pageSize: number): Record<string, string> {
  return {
    startTime: `equals:${sent.startDateTime}`,
    localPartyNumber: sent.localNumber,
    direction: String(sent.direction),
    page: String(page),
    pageSize: String(pageSize),
  };
}

/** Two ISO 8601 durations of the same length, to the microsecond (`PT1M30S` = `PT90S` = `PT1M30.000S`). */
export function sameDuration(a: string, b: string): boolean {
  const left = parseIsoDuration(a);
  const right = parseIsoDuration(b);
  return left !== null && right !== null && Math.round(left * 1e6) === Math.round(right * 1e6);
}

/** The first rule a detail fails for this part, or undefined when it is the part. */
export function mismatchOf(sent: SentPart, detail: RecordingDetailFields): string | undefined {
  if (!sameInstant(sent.startDateTime, detail.startTime)) return 'startTime';
  if (Number(detail.direction) !== sent.direction) return 'direction';
  if (detail.localPartyNumber !== sent.localNumber) return 'localPartyNumber';
  if (!sameDuration(sent.duration, detail.duration)) return 'duration';
  if (sent.remoteNumber !== undefined && detail.remotePartyNumber !== sent.remoteNumber) return 'remotePartyNumber';
  if (sent.pbxCallId !== undefined && detail.pbxCallId !== sent.pbxCallId) return 'pbxCallId';
  if (sent.notes !== undefined && detail.note?.trim() !== sent.notes.trim()) return 'note';
  return undefined;
}

export function matchesPart(sent: SentPart, detail: RecordingDetailFields): boolean {
  return mismatchOf(sent, detail) === undefined;
}

/**
 * Several matches, oldest first: by reference number when every one has a numeric one, else in the reverse of
 * the list's order (the list is most recent first, and every candidate has the same start time).
 */
export function oldestFirst<T extends { referenceNumber?: string | number | null | undefined }>(
  matchesInListOrder: readonly T[],
): T[] {
  const numbers = matchesInListOrder.map((m) => Number(m.referenceNumber ?? Number.NaN));
  const reversed = [...matchesInListOrder].reverse();
  if (numbers.some((n) => !Number.isSafeInteger(n))) return reversed;
  return reversed.sort((a, b) => Number(a.referenceNumber) - Number(b.referenceNumber));
}
