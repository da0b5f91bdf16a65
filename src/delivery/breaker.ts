/**
 * A circuit breaker in front of Imagicle for the background workers:
 * - closed: deliveries go out on every free slot;
 * - open: Imagicle refused the last delivery for a reason that is about
 *   Imagicle (503/429, 5xx, no connection), so deliveries wait until the
 *   backoff has passed;
 * - half-open: one probe delivery at a time; its success closes the
 *   breaker, its failure opens it again with a longer backoff.
 * A job refused for its own sake (a 4xx) or a preparation failure says
 * nothing about Imagicle and leaves the breaker as it is.
 *
 * The rule is written once, here (stepAfter, openFor, allows), and kept by
 * two holders: UpstreamBreaker in the spool's process memory, and the
 * distributed mode's breaker in Redis, shared by every worker process
 * (distributed/shared-breaker.ts).
 */
import type { JobError } from './job.js';
import type { Settlement } from './job-life.js';
import { delayFor, type RetryPolicy } from './retry.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What the end of a delivery run does to the breaker. */
export type BreakerStep = 'close' | 'trip' | 'none';

/**
 * The one rule: a delivery closes the breaker; Imagicle's own trouble trips it, unless it is already open (a
 * delivery that started before it opened and failed since says nothing new, and must not lengthen the backoff:
 * with many slots, every in-flight delivery fails at once when Imagicle goes away).
 */
export function stepAfter(settled: Settlement, lastError: JobError | undefined, state: BreakerState): BreakerStep {
  if (settled.kind === 'delivered') return 'close';
  if (settled.kind !== 'retry' || !upstreamTrouble(lastError)) return 'none';
  return state === 'open' ? 'none' : 'trip';
}

/**
 * The longest the breaker stays open by its own backoff (Imagicle's Retry-After may ask for more). A probe is one
 * upload: one every 15-30 s is no load on Imagicle, while the worker's backoff (SPOOL_RETRY_MAX_DELAY_MS, 5 min by
 * default) would leave a returned Imagicle idle for up to that long before the drain starts.
 */
export const MAX_OPEN_MS = 30_000;

/** How long the breaker stays open after its `failures`-th trip in a row: the worker's backoff, or what Imagicle asked. */
export function openFor(policy: RetryPolicy, failures: number, settled: Settlement): number {
  const asked = settled.kind === 'retry' ? settled.delayMs : 0;
  return Math.max(
    asked,
    delayFor({ ...policy, maxDelayMs: Math.min(policy.maxDelayMs, MAX_OPEN_MS) }, failures, undefined),
  );
}

/** May a delivery start now, in this state, with `delivering` of them (or a probe holder) already under way? */
export function allows(state: BreakerState, delivering: number): boolean {
  if (state === 'closed') return true;
  return state === 'half-open' && delivering === 0;
}

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
    return allows(this.current(now), delivering);
  }

  /** What a delivery run ended with. */
  record(settled: Settlement, lastError: JobError | undefined, now: number): void {
    const step = stepAfter(settled, lastError, this.current(now));
    if (step === 'close') {
      this.state = 'closed';
      this.failures = 0;
    } else if (step === 'trip') {
      this.failures += 1;
      this.state = 'open';
      this.openUntil = now + openFor(this.policy, this.failures, settled);
    }
  }
}

/** A failed attempt that says Imagicle cannot take uploads now (not that this one upload is wrong). */
export function upstreamTrouble(error: JobError | undefined): boolean {
  if (!error || error.part === undefined) return false;
  if (error.status === undefined) return true;
  return error.status === 429 || error.status >= 500;
}
