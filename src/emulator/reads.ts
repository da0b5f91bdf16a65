/**
 * Imagicle's read endpoints as the emulator answers them: the list's filters
 * in the "RHS colon" syntax (`name=operator:value`, a bare value meaning
 * `equals`), paging, most recent first, and the list and detail shapes.
 * Times and durations come back in the server's own spelling (UTC, the
 * fraction only when there is one; `PT90S` as `PT1M30S`), not as they were
 * sent: a client must compare instants and durations, not strings.
 */
import { badRequest } from '../errors.js';
import { formatIsoDuration, parseIsoDuration } from '../imagicle/duration.js';
import { instantNanos, utcInstant } from '../imagicle/instant.js';
import type { StoredRecording } from './recording.js';

export interface ListedRecording {
  id: string;
  referenceNumber: string;
  startTime: string;
  duration: string;
  direction: number;
  localPartyNumber: string;
  remotePartyNumber: string | null;
  ownerUsername: string;
}

export interface RecordingDetail extends Omit<ListedRecording, 'ownerUsername'> {
  pbxCallId: string | null;
  owner: {
    username: string;
    firstName: string | null;
    lastName: string | null;
    phoneNumber: string;
    group: string | null;
    department: string | null;
  };
  preservingUser: string | null;
  note: string | null;
  size: number;
}

/** A stored recording with its place in arrival order (its reference number). */
interface Indexed {
  recording: StoredRecording;
  sequence: number;
}

type Query = Record<string, unknown>;
type Test = (item: Indexed) => boolean;

const TIME_OPERATORS = ['equals', 'before', 'after', 'between'] as const;

function startNanos(r: StoredRecording): bigint {
  return instantNanos(r.metadata.startDateTime) ?? 0n;
}

function endNanos(r: StoredRecording): bigint {
  return startNanos(r) + BigInt(Math.round((parseIsoDuration(r.metadata.duration) ?? 0) * 1e9));
}

/** `operator:value`, or a bare value (`equals`); a value may itself hold colons (times do). */
function splitOperator(raw: string, operators: readonly string[]): { operator: string; value: string } {
  const colon = raw.indexOf(':');
  const head = colon < 0 ? '' : raw.slice(0, colon);
  return operators.includes(head)
    ? { operator: head, value: raw.slice(colon + 1) }
    : { operator: 'equals', value: raw };
}

function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`${name}: give it once, as name=operator:value`);
  return value;
}

function instantParam(name: string, text: string): bigint {
  const nanos = instantNanos(text);
  if (nanos === null) throw badRequest(`${name}: ${JSON.stringify(text)} is not an ISO 8601 date and time`);
  return nanos;
}

function timeFilter(name: string, raw: string, of: (r: StoredRecording) => bigint): Test {
  const { operator, value } = splitOperator(raw, TIME_OPERATORS);
  if (operator === 'between') {
    const [from, to, ...rest] = value.split(',');
    if (from === undefined || to === undefined || rest.length > 0) throw badRequest(`${name}: between needs A,B`);
    const a = instantParam(name, from);
    const b = instantParam(name, to);
    return ({ recording }) => of(recording) >= a && of(recording) <= b;
  }
  const at = instantParam(name, value);
  if (operator === 'before') return ({ recording }) => of(recording) < at;
  if (operator === 'after') return ({ recording }) => of(recording) > at;
  return ({ recording }) => of(recording) === at;
}

function textFilter(name: string, raw: string, operators: readonly string[], of: (r: StoredRecording) => string): Test {
  const { operator, value } = splitOperator(raw, operators);
  if (operator === 'contains') return ({ recording }) => of(recording).includes(value);
  return ({ recording }) => of(recording) === value;
}

function filtersOf(query: Query): Test[] {
  const tests: Test[] = [];
  const add = (name: string, make: (raw: string) => Test): void => {
    const raw = single(query, name);
    if (raw !== undefined) tests.push(make(raw));
  };
  add('startTime', (raw) => timeFilter('startTime', raw, startNanos));
  add('endTime', (raw) => timeFilter('endTime', raw, endNanos));
  add('localPartyNumber', (raw) => textFilter('localPartyNumber', raw, [], (r) => r.metadata.localParty.phoneNumber));
  add('remotePartyNumber', (raw) =>
    textFilter('remotePartyNumber', raw, ['contains'], (r) => r.metadata.remoteParty?.phoneNumber ?? ''),
  );
  add('ownerUsername', (raw) => textFilter('ownerUsername', raw, [], (r) => r.metadata.localParty.username));
  add('direction', (raw) => textFilter('direction', raw, [], (r) => String(r.metadata.direction)));
  return tests;
}

function wholeNumber(query: Query, name: string, min: number): number | undefined {
  const raw = single(query, name);
  if (raw === undefined) return undefined;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < min) throw badRequest(`${name}: must be a whole number ≥ ${min}`);
  return Number(raw);
}

function listed({ recording: r, sequence }: Indexed): ListedRecording {
  const seconds = parseIsoDuration(r.metadata.duration) ?? 0;
  return {
    id: r.id,
    referenceNumber: String(sequence),
    startTime: utcInstant(startNanos(r)),
    duration: formatIsoDuration(seconds),
    direction: r.metadata.direction,
    localPartyNumber: r.metadata.localParty.phoneNumber,
    remotePartyNumber: r.metadata.remoteParty?.phoneNumber ?? null,
    ownerUsername: r.metadata.localParty.username,
  };
}

/** `GET …/Recordings`: the matches, most recent first (then latest received first), one page of them. */
export function listRecordings(
  all: readonly StoredRecording[],
  query: Query,
): { totalCount: number; recordings: ListedRecording[] } {
  const tests = filtersOf(query);
  const page = wholeNumber(query, 'page', 0) ?? 0;
  const pageSize = wholeNumber(query, 'pageSize', 1);
  const matches = all
    .map((recording, i): Indexed => ({ recording, sequence: i + 1 }))
    .filter((item) => tests.every((test) => test(item)))
    .sort((a, b) => {
      const byStart = startNanos(b.recording) - startNanos(a.recording);
      return byStart !== 0n ? (byStart > 0n ? 1 : -1) : b.sequence - a.sequence;
    });
  const shown = pageSize === undefined ? matches : matches.slice(page * pageSize, (page + 1) * pageSize);
  return { totalCount: matches.length, recordings: shown.map(listed) };
}

/** `GET …/Recordings/{id}`: the detail, or undefined when the id is unknown. */
export function recordingDetail(all: readonly StoredRecording[], id: string): RecordingDetail | undefined {
  const index = all.findIndex((r) => r.id === id);
  const recording = all[index];
  if (!recording) return undefined;
  const { ownerUsername, ...summary } = listed({ recording, sequence: index + 1 });
  const m = recording.metadata;
  return {
    ...summary,
    pbxCallId: m.pbxCallId ?? null,
    owner: {
      username: ownerUsername,
      firstName: null,
      lastName: null,
      phoneNumber: m.localParty.phoneNumber,
      group: null,
      department: null,
    },
    preservingUser: m.preserved === true ? ownerUsername : null,
    note: m.notes ?? null,
    size: recording.bytes,
  };
}
