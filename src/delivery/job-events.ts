/**
 * What the job-life module tells the world: an event per transition that a
 * source or an operator cares about, recorded on the job in the same write
 * as the state change (an outbox), then handed to the sinks (webhooks,
 * metrics, the console's live view) once that write is durable. A sink that
 * was not told (a crash between the write and the hand-over) is told again
 * when the store is reopened: sinks must be idempotent on JobEvent.id.
 */
export const JOB_EVENT_TYPES = [
  'recording.delivered',
  'recording.failed',
  'recording.held',
  'recording.retrying',
] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

export interface JobEvent {
  /** Stable for the life of the event (a UUID): the webhook-id of every send of it. */
  id: string;
  type: JobEventType;
  at: string;
}

/** How many events a job keeps (a job has few: one retrying, then delivered, failed or held, per retry by an operator). */
export const MAX_JOB_EVENTS = 20;
