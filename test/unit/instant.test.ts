import { describe, expect, it } from 'vitest';
import { shiftInstant } from '../../src/imagicle/instant.js';

describe('shiftInstant', () => {
  it.each([
    ['2018-09-25T13:00:00.0000000Z', 0, '2018-09-25T13:00:00.0000000Z'],
    ['2018-09-25T13:00:00.0000000Z', 16777.2155, '2018-09-25T17:39:37.2155000Z'],
    ['2018-09-25T13:00:00Z', 1.5, '2018-09-25T13:00:01.500Z'],
    ['2018-09-25T23:59:59.999Z', 0.002, '2018-09-26T00:00:00.001Z'],
    ['2026-12-31T23:00:00.000+01:00', 3600.25, '2027-01-01T00:00:00.250+01:00'],
    ['2026-03-01T00:00:00.000', 86400, '2026-03-02T00:00:00.000'],
    ['2024-02-28T12:00:00.123456789Z', 86400.000000001, '2024-02-29T12:00:00.123456790Z'],
  ])('%s + %s s = %s', (start, seconds, expected) => {
    expect(shiftInstant(start, seconds)).toBe(expected);
  });

  it('is exact over many samples (no float drift)', () => {
    const perPart = 16_777_194 / 8000; // samples / rate
    expect(shiftInstant('2026-11-29T10:15:00.0000000Z', perPart * 3)).toBe('2026-11-29T11:59:51.4477500Z');
  });
});
