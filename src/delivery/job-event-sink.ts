/** Whoever follows the job-life module's events (job-events.ts): webhooks, and later metrics or a live view. */
import type { JobEvent } from './job-events.js';
import type { JobRecord } from './job.js';

/** Called after the write that recorded the events; told again when a store reopens (idempotent on event id). */
export interface JobEventSink {
  publish(job: Readonly<JobRecord>, events: readonly JobEvent[]): void | Promise<void>;
}
