/**
 * What is safe to retry, and when: the retry policy as plain data, a pure
 * delay function that honours Retry-After, and the classification of one
 * attempt's outcome. No I/O here (see docs/delivery.md, "What is retried").
 */

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  maxAttempts: number;
  /** Delay after the first failed attempt, before jitter. */
  minDelayMs: number;
  /** Growth of the delay per attempt. */
  factor: number;
  /** Cap on one delay (Retry-After may ask for more: it is honoured). */
  maxDelayMs: number;
  /** Budget for all attempts and delays together; a retry that would end after it is not started. */
  maxTotalMs: number;
  /** Answers that mean "not applied, try again later". */
  retryStatuses: readonly number[];
  /** Answers after which the recording may or may not have been imported. */
  ambiguousStatuses: readonly number[];
  /** Retry ambiguous outcomes too (a duplicate is then possible); otherwise they are held. */
  retryAmbiguous: boolean;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 4,
  minDelayMs: 500,
  factor: 2,
  maxDelayMs: 10_000,
  maxTotalMs: 30_000,
  retryStatuses: [408, 429, 503],
  ambiguousStatuses: [500, 502, 504],
  retryAmbiguous: false,
});

/** One attempt, as far as the retry decision is concerned. */
export type AttemptOutcome =
  | { kind: 'answer'; status: number; retryAfter?: string | undefined }
  | {
      kind: 'no-answer';
      /** undici/system error code, e.g. ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT. */
      code: string | undefined;
      /** The whole request body was handed to the socket: the server may have processed it. */
      bodyComplete: boolean;
    };

/**
 * - success: a 2xx.
 * - retry: certainly not applied (nothing or only part of the body reached the
 *   server, or the server said 503/429/408).
 * - ambiguous: the whole body went out and then no answer came, or a 500,
 *   502 or 504: the recording may have been imported.
 * - permanent: any other answer (400, 401, 403, 409, 501, …): retrying
 *   cannot change it.
 */
export type Verdict = 'success' | 'retry' | 'ambiguous' | 'permanent';

export function classify(
  outcome: AttemptOutcome,
  policy: Pick<RetryPolicy, 'retryStatuses' | 'ambiguousStatuses'> = DEFAULT_RETRY_POLICY,
): Verdict {
  if (outcome.kind === 'no-answer') return outcome.bodyComplete ? 'ambiguous' : 'retry';
  const { status } = outcome;
  if (status >= 200 && status < 300) return 'success';
  if (policy.retryStatuses.includes(status)) return 'retry';
  if (policy.ambiguousStatuses.includes(status)) return 'ambiguous';
  return 'permanent';
}

/** Whether a verdict leads to another attempt under the policy (budget aside). */
export function shouldRetry(verdict: Verdict, policy: Pick<RetryPolicy, 'retryAmbiguous'>): boolean {
  return verdict === 'retry' || (verdict === 'ambiguous' && policy.retryAmbiguous);
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now: number = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Delay before attempt `attempt + 1`, after `attempt` failed ones (1-based):
 * exponential, capped, with "equal jitter" (between half and all of the
 * step), and never shorter than what Retry-After asks.
 */
export function delayFor(
  policy: Pick<RetryPolicy, 'minDelayMs' | 'factor' | 'maxDelayMs'>,
  attempt: number,
  retryAfterHeader: string | undefined,
  random: () => number = Math.random,
  now: number = Date.now(),
): number {
  const step = Math.min(policy.maxDelayMs, policy.minDelayMs * policy.factor ** Math.max(0, attempt - 1));
  const jittered = Math.round(step / 2 + random() * (step / 2));
  const asked = parseRetryAfter(retryAfterHeader, now);
  return asked === undefined ? jittered : Math.max(asked, jittered);
}
