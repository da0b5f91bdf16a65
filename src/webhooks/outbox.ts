/**
 * Where webhook deliveries are kept until sent: the file outbox under
 * SPOOL_DIR/webhooks (one process) or the Redis outbox (distributed mode).
 * One contract, run against both by test/integration/webhook-outbox.test.ts.
 */
import type { WebhookDelivery } from './delivery.js';

export interface WebhookOutbox {
  /** Adds deliveries durably; one whose id is already there is left as it is (publish is idempotent). Returns those added. */
  add(deliveries: readonly WebhookDelivery[]): Promise<WebhookDelivery[]>;
  /**
   * Takes up to `limit` pending deliveries due at `now` for one attempt: none is handed to two dispatchers at once
   * while its lease (`leaseMs`) runs; a dispatcher that dies lets the lease run out and another sends it again.
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<WebhookDelivery[]>;
  /** Writes a delivery after an attempt or a re-send, and ends its lease. */
  save(delivery: WebhookDelivery): Promise<void>;
  get(id: string): Promise<WebhookDelivery | undefined>;
  forJob(jobId: string): Promise<WebhookDelivery[]>;
  /** When the next pending delivery is due (ms since the epoch), if any: the dispatcher sleeps until then. */
  nextDueAt(): Promise<number | undefined>;
  /** Creation time (ms) of the oldest pending delivery, for the metrics. */
  oldestPendingAt(): Promise<number | undefined>;
  /** Forgets sent, failed and gone deliveries last changed before `before` (ms); returns how many. */
  prune(before: number): Promise<number>;
  close(): Promise<void>;
}
