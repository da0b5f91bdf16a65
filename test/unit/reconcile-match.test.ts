import { describe, expect, it } from 'vitest';
import { instantNanos, sameInstant, utcInstant } from '../../src/imagicle/instant.js';
import {
  candidateQuery,
  detailSchema,
  matchesPart,
  mayBePart,
  mismatchOf,
  oldestFirst,
  sameDuration,
  sentPartOf,
  type SentPart,
} from '../../src/imagicle/reconcile-match.js';

const metadata = {
  direction: 2,
  localParty: { phoneNumber: '376', username: 'giuliano' },
  pbxCallId: 'call-1',
  preserved: true,
  duration: 'PT1M30S',
  notes: 'part 2/3',
  startDateTime: '2018-09-25T13:00:00.0000000Z',
  remoteParty: { phoneNumber: '123456' },
};

const sent = sentPartOf(metadata) as SentPart;

/** A detail as the emulator (or Imagicle) writes it back: UTC, its own spelling. */
const detail = (overrides: Record<string, unknown> = {}) =>
  detailSchema.parse({
    id: 'a1',
    referenceNumber: '7',
    startTime: '2018-09-25T13:00:00Z',
    duration: 'PT90S',
    direction: 2,
    localPartyNumber: '376',
    remotePartyNumber: '123456',
    pbxCallId: 'call-1',
    note: 'part 2/3',
    ...overrides,
  });

describe('instants written differently', () => {
  it.each([
    ['2018-09-25T13:00:00.0000000Z', '2018-09-25T13:00:00Z'],
    ['2018-09-25T13:00:00.0000000Z', '2018-09-25T14:00:00+01:00'],
    ['2018-09-25T13:00:00.0000000Z', '2018-09-25T08:00:00.000-05:00'],
    ['2018-09-25T13:00:00.5Z', '2018-09-25T15:00:00.5000000+0200'],
    ['2018-09-25T13:00:00.250Z', '2018-09-25T13:00:00.25'],
    ['2018-09-25T00:30:00.1234567Z', '2018-09-24T23:00:00.123456700-01:30'],
    ['2018-12-31T23:59:59.999Z', '2019-01-01T00:59:59.999+01:00'],
  ])('%s is %s', (a, b) => {
    expect(sameInstant(a, b)).toBe(true);
    expect(sameInstant(b, a)).toBe(true);
  });

  it.each([
    ['2018-09-25T13:00:00.0000000Z', '2018-09-25T13:00:00.0000001Z'],
    ['2018-09-25T13:00:00Z', '2018-09-25T13:00:00+01:00'],
    ['2018-09-25T13:00:00Z', 'yesterday'],
    ['not a time', 'not a time'],
  ])('%s is not %s', (a, b) => {
    expect(sameInstant(a, b)).toBe(false);
  });

  it('writes an instant back in UTC with only the fraction it needs', () => {
    expect(utcInstant(instantNanos('2018-09-25T14:00:00.0000000+01:00') as bigint)).toBe('2018-09-25T13:00:00Z');
    expect(utcInstant(instantNanos('2018-09-25T13:00:00.4477500Z') as bigint)).toBe('2018-09-25T13:00:00.44775Z');
    expect(utcInstant(instantNanos('1969-12-31T23:59:59.5Z') as bigint)).toBe('1969-12-31T23:59:59.5Z');
  });
});

describe('durations compared as durations', () => {
  it.each([
    ['PT1M30S', 'PT90S'],
    ['PT1M30S', 'PT1M30.000S'],
    ['PT1M30S', 'PT0H1M30S'],
    ['PT4M4.28S', 'PT244.280S'],
    ['PT1H', 'PT60M'],
    ['PT0.5S', 'PT0,5S'],
  ])('%s = %s', (a, b) => expect(sameDuration(a, b)).toBe(true));

  it.each([
    ['PT1M30S', 'PT1M30.001S'],
    ['PT4M4.28S', 'PT4M4.2S'],
    ['PT1M30S', 'ninety seconds'],
  ])('%s ≠ %s', (a, b) => expect(sameDuration(a, b)).toBe(false));
});

describe('matching a detail to the part sent', () => {
  it('matches the part written back with another offset, precision and duration spelling', () => {
    expect(mismatchOf(sent, detail())).toBeUndefined();
    expect(matchesPart(sent, detail({ startTime: '2018-09-25T15:00:00.000+02:00', duration: 'PT1M30.0S' }))).toBe(true);
  });

  it.each([
    ['startTime', { startTime: '2018-09-25T13:00:01Z' }],
    ['direction', { direction: 1 }],
    ['localPartyNumber', { localPartyNumber: '377' }],
    ['duration', { duration: 'PT1M31S' }],
    ['remotePartyNumber', { remotePartyNumber: '1234567' }],
    ['remotePartyNumber', { remotePartyNumber: null }],
    ['pbxCallId', { pbxCallId: 'call-2' }],
    ['pbxCallId', { pbxCallId: undefined }], // a server that does not give it back: not there, never a wrong "found"
    ['note', { note: 'part 1/3' }],
  ])('a different %s is another recording', (field, overrides) => {
    expect(mismatchOf(sent, detail(overrides))).toBe(field);
  });

  it('takes the direction as a number or a numeral, and notes without surrounding blanks', () => {
    expect(matchesPart(sent, detail({ direction: '2', note: ' part 2/3\n' }))).toBe(true);
  });

  it('compares the remote number, pbxCallId and notes only as far as they were sent', () => {
    const bare = sentPartOf({ ...metadata, remoteParty: null, pbxCallId: '', notes: undefined }) as SentPart;
    expect(bare).toMatchObject({ remoteNumber: undefined, pbxCallId: undefined, notes: undefined });
    expect(matchesPart(bare, detail({ remotePartyNumber: '999', pbxCallId: 'x', note: 'annotated later' }))).toBe(true);
    expect(matchesPart(bare, detail({ duration: 'PT1M' }))).toBe(false);
  });

  it('refuses metadata without what every upload carries', () => {
    expect(sentPartOf({ ...metadata, startDateTime: undefined })).toBeUndefined();
    expect(sentPartOf({ ...metadata, localParty: { username: 'x' } })).toBeUndefined();
  });

  it('lists by the start instant as sent, the local number and the direction', () => {
    expect(candidateQuery(sent, 1, 50)).toEqual({
      startTime: 'equals:2018-09-25T13:00:00.0000000Z',
      localPartyNumber: '376',
      direction: '2',
      page: '1',
      pageSize: '50',
    });
  });
});

describe('list entries', () => {
  it('are read in detail unless what they show is another recording', () => {
    const entry = { id: 'x', startTime: '2018-09-25T14:00:00+01:00', direction: 2, localPartyNumber: '376' };
    expect(mayBePart(sent, entry)).toBe(true);
    expect(mayBePart(sent, { id: 'x' })).toBe(true); // a server that lists ids only
    expect(mayBePart(sent, { ...entry, startTime: '2018-09-25T13:00:01Z' })).toBe(false);
    expect(mayBePart(sent, { ...entry, direction: '1' })).toBe(false);
    expect(mayBePart(sent, { ...entry, localPartyNumber: '377' })).toBe(false);
  });
});

describe('the oldest of several matches', () => {
  it('is the lowest reference number when every match has one', () => {
    const ordered = oldestFirst([
      { id: 'c', referenceNumber: '12' },
      { id: 'a', referenceNumber: 3 },
      { id: 'b', referenceNumber: '9' },
    ]);
    expect(ordered.map((m) => m.id)).toEqual(['a', 'b', 'c']);
  });

  it("is the last in the list's order (most recent first) otherwise", () => {
    const ordered = oldestFirst([
      { id: 'newest', referenceNumber: 'R-2' },
      { id: 'middle', referenceNumber: undefined },
      { id: 'oldest', referenceNumber: '1' },
    ]);
    expect(ordered.map((m) => m.id)).toEqual(['oldest', 'middle', 'newest']);
  });
});
