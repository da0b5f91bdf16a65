/**
 * The overview's rates (issue 24): uploads, deliveries and failures per 5 minutes over the last hour, kept by the
 * gateway in a ring of twelve buckets so that the console draws the hour even when it was just opened.
 * Uploads are counted as answered (every endpoint, like uploads_total); deliveries and failures from the job-life
 * module's events (every door: HTTP, import, watch): recording.delivered, and recording.failed or recording.held.
 * An event told twice (a store reopened after a crash) is counted once; it lands in the bucket of when it happened.
 */
import type { JobEventSink } from './delivery/job-event-sink.js';
import type { JobEvent } from './delivery/job-events.js';

export const RATE_BUCKET_MS = 5 * 60_000;
const RATE_WINDOW_MS = 60 * 60_000;
const BUCKETS = RATE_WINDOW_MS / RATE_BUCKET_MS;

const RATE_SERIES = ['uploads', 'deliveries', 'failures'] as const;
export type RateSeries = (typeof RATE_SERIES)[number];

export interface RatesView {
  bucketSeconds: number;
  /** Start of the oldest bucket (ISO 8601); the last bucket is the one under way. */
  from: string;
  /** Per series, twelve counts, oldest first. */
  series: Record<RateSeries, number[]>;
}

export class RateHistory implements JobEventSink {
  /** Bucket index (ms since the epoch / RATE_BUCKET_MS) → counts. */
  private readonly buckets = new Map<number, Record<RateSeries, number>>();
  /** Event ids counted within the window, with their bucket, so that a re-publish adds nothing. */
  private readonly counted = new Map<string, number>();
  /** The bucket under way when the old ones were last forgotten (once per bucket, not per count). */
  private sweptAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly now: () => number = Date.now) {}

  count(series: RateSeries, at = this.now()): void {
    const index = Math.floor(at / RATE_BUCKET_MS);
    if (index <= this.current() - BUCKETS) return; // older than the hour shown
    const bucket = this.buckets.get(index) ?? { uploads: 0, deliveries: 0, failures: 0 };
    bucket[series] += 1;
    this.buckets.set(index, bucket);
    this.forgetOld();
  }

  publish(_job: unknown, events: readonly JobEvent[]): void {
    for (const event of events) {
      const series: RateSeries | undefined =
        event.type === 'recording.delivered'
          ? 'deliveries'
          : event.type === 'recording.failed' || event.type === 'recording.held'
            ? 'failures'
            : undefined;
      if (!series || this.counted.has(event.id)) continue;
      const at = Date.parse(event.at);
      const when = Number.isNaN(at) ? this.now() : at;
      this.counted.set(event.id, Math.floor(when / RATE_BUCKET_MS));
      this.count(series, when);
    }
  }

  view(): RatesView {
    const last = this.current();
    const first = last - BUCKETS + 1;
    const series = { uploads: [], deliveries: [], failures: [] } as Record<RateSeries, number[]>;
    for (let i = first; i <= last; i++) {
      const bucket = this.buckets.get(i);
      for (const name of RATE_SERIES) series[name].push(bucket?.[name] ?? 0);
    }
    return { bucketSeconds: RATE_BUCKET_MS / 1000, from: new Date(first * RATE_BUCKET_MS).toISOString(), series };
  }

  private current(): number {
    return Math.floor(this.now() / RATE_BUCKET_MS);
  }

  private forgetOld(): void {
    if (this.sweptAt === this.current()) return;
    this.sweptAt = this.current();
    const oldest = this.current() - BUCKETS + 1;
    for (const index of this.buckets.keys()) if (index < oldest) this.buckets.delete(index);
    for (const [id, index] of this.counted) if (index < oldest) this.counted.delete(id);
  }
}
