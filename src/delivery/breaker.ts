/**
 * A circuit breaker in front of Imagicle for the background worker:
 * - closed: deliveries go out on every free slot;
 * - open: Imagicle refused the last delivery for a reason that is about
 *   Imagicle (503/429, 5xx, no connection), so deliveries wait until the
 *   backoff has passed;
 * - half-open: one probe delivery at a time; its success closes the
 *   breaker, its failure opens it again with a longer backoff.
 * A job refused for its own sake (a 4xx) or a preparation failure says
 * nothing about Imagicle and leaves the breaker as it is.
 */
import type { JobError } from './job.js';
import type { Settlement } from './job-life.js';
import { delayFor, type RetryPolicy } from './retry.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export class UpstreamBreaker {
  private state: BreakerState = 'closed';
  private openUntil = 0;
  private failures = 0;

  constructor(private readonly policy: RetryPolicy) {}

  isClosed(): boolean {
    return this.state === 'closed';
  }

  current(now = Date.now()): BreakerState {
    if (this.state === 'open' && now >= this.openUntil) return 'half-open';
    return this.state;
  }

  /** May a delivery start now, with `delivering` of them already under way? */
  allows(now: number, delivering: number): boolean {
    const state = this.current(now);
    if (state === 'closed') return true;
    return state === 'half-open' && delivering === 0;
  }

  /** What a delivery run ended with. */
  record(settled: Settlement, lastError: JobError | undefined, now: number): void {
    if (settled.kind === 'delivered') {
      this.state = 'closed';
      this.failures = 0;
      return;
    }
    if (settled.kind !== 'retry' || !upstreamTrouble(lastError)) return;
    this.failures += 1;
    this.state = 'open';
    this.openUntil = now + Math.max(settled.delayMs, delayFor(this.policy, this.failures, undefined));
  }
}

/** A failed attempt that says Imagicle cannot take uploads now (not that this one upload is wrong). */
function upstreamTrouble(error: JobError | undefined): boolean {
  if (!error || error.part === undefined) return false;
  if (error.status === undefined) return true;
  return error.status === 429 || error.status >= 500;
}
