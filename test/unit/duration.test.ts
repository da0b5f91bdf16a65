import { describe, expect, it } from 'vitest';
import { formatIsoDuration, parseIsoDuration } from '../../src/imagicle/duration.js';

describe('formatIsoDuration', () => {
  it.each([
    [0, 'PT0S'],
    [0.0004, 'PT0S'],
    [0.0005, 'PT0.001S'],
    [1, 'PT1S'],
    [90, 'PT1M30S'],
    [244.28, 'PT4M4.28S'],
    [3600, 'PT1H'],
    [3600.5, 'PT1H0.5S'],
    [5 * 3600 + 61.125, 'PT5H1M1.125S'],
    [59.9996, 'PT1M'],
    [12345 / 8000, 'PT1.543S'],
  ])('%s s → %s', (seconds, iso) => {
    expect(formatIsoDuration(seconds)).toBe(iso);
  });

  it('rejects negative and non-finite values', () => {
    expect(() => formatIsoDuration(-1)).toThrow(RangeError);
    expect(() => formatIsoDuration(Number.NaN)).toThrow(RangeError);
  });

  it('round-trips through parse within half a millisecond', () => {
    for (let s = 0; s < 20_000; s += 97.3217) {
      expect(Math.abs(parseIsoDuration(formatIsoDuration(s))! - s)).toBeLessThanOrEqual(0.0005 + 1e-9);
    }
  });
});

describe('parseIsoDuration', () => {
  it.each([
    ['PT1M30S', 90],
    ['PT4M4.28S', 244.28],
    ['PT0,5S', 0.5],
    ['P1DT1S', 86_401],
    ['PT2H', 7200],
  ])('%s → %s', (iso, seconds) => {
    expect(parseIsoDuration(iso)).toBeCloseTo(seconds, 9);
  });

  it.each(['', 'P', 'PT', '1M30S', 'PT1M30', 'PTS', 'PT-1S', 'PT1.S'])('rejects %j', (text) => {
    expect(parseIsoDuration(text)).toBeNull();
  });
});
