/**
 * Rates over the last hour, from the counters of /metrics sampled while the console is open: uploads, deliveries
 * and failures per 5 minutes. Samples are kept in this tab's sessionStorage (an hour at most), so that a reload
 * keeps the picture; the gateway itself keeps no history (Prometheus does, for the long view).
 */
import type { PromSample } from './api';

const KEY = 'imagicle-gateway-rate-samples';
const BUCKET_MS = 5 * 60_000;
const WINDOW_MS = 60 * 60_000;

export interface RateSample {
  at: number;
  uploads: number;
  delivered: number;
  failed: number;
}

const P = 'imagicle_gateway_';
const sum = (samples: PromSample[], name: string, match: (labels: Record<string, string>) => boolean): number =>
  samples.filter((s) => s.name === name && match(s.labels)).reduce((n, s) => n + s.value, 0);

export function counterSample(samples: PromSample[], at = Date.now()): RateSample {
  return {
    at,
    uploads: sum(samples, `${P}uploads_total`, () => true),
    delivered: sum(samples, `${P}uploads_total`, (l) => l.outcome === 'delivered'),
    failed: sum(samples, `${P}uploads_total`, (l) =>
      ['failed', 'held', 'upstream-refused', 'refused'].includes(l.outcome ?? ''),
    ),
  };
}

export function remember(sample: RateSample): RateSample[] {
  let kept: RateSample[] = [];
  try {
    kept = JSON.parse(sessionStorage.getItem(KEY) ?? '[]') as RateSample[];
  } catch {
    kept = [];
  }
  // A restarted gateway starts its counters at 0 again: the history before it no longer adds up.
  const last = kept.at(-1);
  if (last && sample.uploads < last.uploads) kept = [];
  kept = [...kept.filter((s) => sample.at - s.at <= WINDOW_MS), sample];
  sessionStorage.setItem(KEY, JSON.stringify(kept));
  return kept;
}

/** Increments per 5-minute bucket over the last hour (12 buckets, oldest first). */
export function perBucket(
  samples: readonly RateSample[],
  field: keyof Omit<RateSample, 'at'>,
  now = Date.now(),
): number[] {
  const buckets = Array<number>(WINDOW_MS / BUCKET_MS).fill(0);
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const index = buckets.length - 1 - Math.floor((now - b.at) / BUCKET_MS);
    if (index >= 0) buckets[index]! += Math.max(0, b[field] - a[field]);
  }
  return buckets;
}
