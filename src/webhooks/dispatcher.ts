/**
 * The loop that sends webhooks: it takes due deliveries from the outbox (a
 * lease each, so that two processes sharing a Redis outbox never send one
 * twice while both live), sends at most `concurrency` at once, and writes
 * each outcome back. It shares nothing with the delivery of recordings: a
 * slow or dead receiver holds only its own slots.
 *
 *   2xx → sent · 410 → gone (no more attempts) · any other answer or none →
 *   again after an exponential, jittered delay, until expiresAt (WEBHOOK_MAX_AGE)
 *   → failed · an address webhooks may not reach → failed at once
 */
import type { Logger } from '../logger.js';
import { backoffDelay, type BackoffPolicy, type WebhookDelivery, type WebhookEventType } from './delivery.js';
import type { WebhookOutbox } from './outbox.js';
import type { SendResult, WebhookSender } from './sender.js';

export type AttemptOutcome = 'ok' | 'http-error' | 'unreachable' | 'gone' | 'refused';

/** What the dispatcher counts (metrics.ts implements it). */
export interface WebhookMetricsSink {
  webhookAttempt(event: WebhookEventType, outcome: AttemptOutcome, seconds: number): void;
  webhookFailed(event: WebhookEventType): void;
}

/** Where a delivery goes now: its secrets and address rule, or why it cannot go at all. */
export type Target = { secrets: readonly string[]; allowPrivate: boolean } | { problem: string };

export interface DispatcherOptions extends BackoffPolicy {
  concurrency: number;
  timeoutMs: number;
  /** Longest sleep between looks at the outbox (other processes add to a shared one). */
  pollMs?: number;
  random?: () => number;
}

export class WebhookDispatcher {
  private running = false;
  private loopDone: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private wakeUp: (() => void) | undefined;
  private woken = false;
  /** Deliveries whose writing to the outbox failed at publish time: written again by the loop. */
  private readonly unsaved: WebhookDelivery[] = [];

  constructor(
    private readonly outbox: WebhookOutbox,
    private readonly sender: WebhookSender,
    private readonly targetOf: (d: WebhookDelivery) => Target,
    private readonly options: DispatcherOptions,
    private readonly log: Logger,
    private readonly metrics?: WebhookMetricsSink | undefined,
  ) {}

  private get leaseMs(): number {
    return this.options.timeoutMs + 30_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Stops taking deliveries and waits for the attempts under way (their outcome is written). */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
    await Promise.all([...this.inFlight]);
  }

  /** Something may be due now (a publish, a re-send, a freed slot). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Keeps deliveries the outbox could not take at publish time; the loop writes them. */
  retryAdd(deliveries: readonly WebhookDelivery[]): void {
    this.unsaved.push(...deliveries);
    this.wake();
  }

  private async loop(): Promise<void> {
    const pollMs = this.options.pollMs ?? 1000;
    while (this.running) {
      let sleepMs = pollMs;
      try {
        if (this.unsaved.length > 0) {
          const batch = this.unsaved.splice(0);
          await this.outbox.add(batch).catch((error: unknown) => {
            this.unsaved.unshift(...batch);
            throw error;
          });
        }
        const free = this.options.concurrency - this.inFlight.size;
        if (free > 0) {
          const due = await this.outbox.claimDue(Date.now(), free, this.leaseMs);
          for (const d of due) this.track(this.attempt(d));
        }
        if (this.inFlight.size < this.options.concurrency) {
          const next = await this.outbox.nextDueAt();
          if (next !== undefined) sleepMs = Math.min(pollMs, Math.max(0, next - Date.now()));
        }
      } catch (error) {
        this.log.error({ err: error }, 'webhooks: the outbox could not be read or written; trying again');
      }
      if (!this.running) break;
      await this.sleep(sleepMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => {
      this.inFlight.delete(work);
      this.wake();
    });
  }

  /** One attempt of one delivery, and its outcome written. Never throws. */
  private async attempt(d: WebhookDelivery): Promise<void> {
    const log = this.log.child({ webhookId: d.eventId, jobId: d.jobId, event: d.event });
    try {
      await this.outbox.save(await this.attemptOnce(d, log));
    } catch (error) {
      // The lease runs out and the delivery is taken again: sent twice at worst, under the same webhook-id.
      log.error({ err: error }, 'webhooks: an attempt could not be recorded');
    }
  }

  private async attemptOnce(d: WebhookDelivery, log: Logger): Promise<WebhookDelivery> {
    const now = Date.now();
    const next: WebhookDelivery = { ...d, updatedAt: new Date(now).toISOString() };
    const finish = (state: 'failed', reason: string): WebhookDelivery => {
      this.metrics?.webhookFailed(d.event);
      log.warn({ attempts: next.attempts, reason, host: hostOf(d.url) }, 'webhook failed for good');
      return { ...next, state, lastError: reason, nextAttemptAt: undefined };
    };
    if (now >= Date.parse(d.expiresAt)) {
      const last = d.attempts > 0 ? `: ${reasonOf(d)}` : '';
      return finish('failed', `not acknowledged before ${d.expiresAt}${last}`);
    }
    const target = this.targetOf(d);
    if ('problem' in target) return finish('failed', target.problem);

    const result: SendResult = await this.sender.send({
      url: d.url,
      id: d.eventId,
      body: d.body,
      secrets: target.secrets,
      allowPrivate: target.allowPrivate,
    });
    next.attempts = d.attempts + 1;
    next.lastAttemptAt = new Date(now).toISOString();
    next.updatedAt = new Date().toISOString();
    next.lastStatus = result.kind === 'answered' ? result.status : undefined;
    next.lastError = result.kind === 'error' ? result.message : undefined;
    const outcome = outcomeOf(result);
    this.metrics?.webhookAttempt(d.event, outcome, result.ms / 1000);

    switch (outcome) {
      case 'ok':
        log.info({ attempts: next.attempts, status: next.lastStatus, host: hostOf(d.url) }, 'webhook sent');
        return { ...next, state: 'sent', sentAt: next.updatedAt, nextAttemptAt: undefined };
      case 'gone':
        log.info({ attempts: next.attempts, host: hostOf(d.url) }, 'webhook endpoint answered 410: no more attempts');
        return { ...next, state: 'gone', nextAttemptAt: undefined };
      case 'refused':
        return finish('failed', next.lastError ?? 'address refused');
      default: {
        const after = Date.now();
        const expires = Date.parse(d.expiresAt);
        if (after >= expires) return finish('failed', `not acknowledged before ${d.expiresAt}: ${reasonOf(next)}`);
        const delay = backoffDelay(this.options, next.attempts, this.options.random);
        const at = Math.min(after + delay, expires);
        log.info(
          { attempts: next.attempts, reason: reasonOf(next), retryInMs: at - after },
          'webhook not acknowledged',
        );
        return { ...next, state: 'pending', nextAttemptAt: new Date(at).toISOString() };
      }
    }
  }
}

function outcomeOf(result: SendResult): AttemptOutcome {
  if (result.kind === 'error') return result.refused ? 'refused' : 'unreachable';
  if (result.status >= 200 && result.status < 300) return 'ok';
  return result.status === 410 ? 'gone' : 'http-error';
}

function reasonOf(d: WebhookDelivery): string {
  return d.lastStatus !== undefined ? `HTTP ${d.lastStatus}` : (d.lastError ?? 'no answer');
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid)';
  }
}
