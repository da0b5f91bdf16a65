/**
 * One webhook delivery: one event of one job to one endpoint, with its
 * attempts. Its id is derived from the event's id and the endpoint, so a
 * second publish of the same event (a re-publish after a crash) finds it
 * already there. The body is fixed when the delivery is created: every
 * retry sends the same bytes under the same webhook-id.
 */
import { createHash } from 'node:crypto';
import type { JobEventType } from '../delivery/job-events.js';

export const DELIVERY_STATES = ['pending', 'sent', 'failed', 'gone'] as const;
/** pending: to be sent (again); sent: a 2xx; failed: WEBHOOK_MAX_AGE passed (or no endpoint any more); gone: a 410. */
type DeliveryState = (typeof DELIVERY_STATES)[number];

/** configured: an endpoint of WEBHOOKS; callback: the job's own callbackUrl. */
export type TargetKind = 'configured' | 'callback';

export type WebhookEventType = JobEventType | 'ping';

export interface WebhookDelivery {
  version: 1;
  id: string;
  /** The webhook-id: the JobEvent's id, the same for every endpoint and every attempt. */
  eventId: string;
  event: WebhookEventType;
  jobId: string;
  /** The job's owner (http/owner.ts): who may see and re-send this delivery. */
  owner: string | undefined;
  kind: TargetKind;
  url: string;
  /** The JSON body, as sent on every attempt. */
  body: string;
  state: DeliveryState;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  /** The delivery gives up after this (WEBHOOK_MAX_AGE from creation or from a re-send). */
  expiresAt: string;
  nextAttemptAt: string | undefined;
  lastStatus: number | undefined;
  lastError: string | undefined;
  lastAttemptAt: string | undefined;
  sentAt: string | undefined;
}

/** A file-name-safe id, stable for one event and one endpoint. */
export function deliveryIdOf(eventId: string, kind: TargetKind, url: string): string {
  const event = /^[A-Za-z0-9_-]{1,64}$/.test(eventId) ? eventId : createHash('sha256').update(eventId).digest('hex');
  const endpoint = createHash('sha256').update(`${kind} ${url}`).digest('hex').slice(0, 16);
  return `${event}.${endpoint}`;
}

export interface BackoffPolicy {
  minDelayMs: number;
  maxDelayMs: number;
}

/**
 * The wait before attempt `attempts + 1`: exponential from minDelayMs, capped at maxDelayMs, with "equal jitter"
 * (half fixed, half random) so that many deliveries failing together do not come back together.
 */
export function backoffDelay(policy: BackoffPolicy, attempts: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** What the jobs API and the console show of a delivery: the endpoint's host only, never the body or a secret. */
export function deliveryView(d: WebhookDelivery) {
  let host: string;
  try {
    host = new URL(d.url).host;
  } catch {
    host = '(invalid)';
  }
  return {
    id: d.id,
    webhookId: d.eventId,
    event: d.event,
    endpoint: host,
    kind: d.kind,
    state: d.state,
    attempts: d.attempts,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    lastAttemptAt: d.lastAttemptAt,
    nextAttemptAt: d.state === 'pending' ? d.nextAttemptAt : undefined,
    createdAt: d.createdAt,
    sentAt: d.sentAt,
    expiresAt: d.expiresAt,
  };
}

export type DeliveryView = ReturnType<typeof deliveryView>;
