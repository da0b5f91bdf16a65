/** The overview's hour (rate-history.ts): 5-minute buckets, events counted once and where they happened. */
import { describe, expect, it } from 'vitest';
import { RateHistory, RATE_BUCKET_MS } from '../../src/rate-history.js';
import type { JobEvent } from '../../src/delivery/job-events.js';

const T0 = Date.parse('2026-12-06T10:00:00Z');
const event = (id: string, type: JobEvent['type'], at: number): JobEvent => ({
  id,
  type,
  at: new Date(at).toISOString(),
});

describe('the hour of rates', () => {
  it('counts uploads, deliveries and failures per 5 minutes, oldest first, the current bucket last', () => {
    let now = T0 + 2 * 60_000;
    const rates = new RateHistory(() => now);
    rates.count('uploads');
    rates.count('uploads');
    rates.publish({}, [event('a', 'recording.delivered', now), event('b', 'recording.held', now)]);
    rates.publish({}, [event('c', 'recording.retrying', now), event('d', 'recording.failed', now)]);
    now += RATE_BUCKET_MS;
    rates.count('uploads');
    const view = rates.view();
    expect(view.bucketSeconds).toBe(300);
    expect(view.series.uploads).toEqual([...Array<number>(10).fill(0), 2, 1]);
    expect(view.series.deliveries.slice(-2)).toEqual([1, 0]);
    expect(view.series.failures.slice(-2)).toEqual([2, 0]);
    expect(Date.parse(view.from)).toBe(T0 - 10 * RATE_BUCKET_MS);
  });

  it('counts an event told twice (a store reopened) once, in the bucket of when it happened', () => {
    const now = T0;
    const rates = new RateHistory(() => now);
    const delivered = event('e', 'recording.delivered', now - 20 * 60_000);
    rates.publish({}, [delivered]);
    rates.publish({}, [delivered]);
    rates.publish({}, [event('old', 'recording.failed', now - 2 * 3_600_000)]);
    const view = rates.view();
    expect(view.series.deliveries.reduce((a, b) => a + b, 0)).toBe(1);
    expect(view.series.deliveries[11 - 4]).toBe(1);
    expect(view.series.failures.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('forgets what is older than the hour', () => {
    let now = T0;
    const rates = new RateHistory(() => now);
    rates.count('uploads');
    now += 60 * 60_000;
    rates.count('uploads');
    expect(rates.view().series.uploads).toEqual([...Array<number>(11).fill(0), 1]);
  });
});
