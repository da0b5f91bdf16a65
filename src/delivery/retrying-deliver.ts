/**
 * Delivery of one upload with the retry policy: each attempt rebuilds the
 * body from disk (UpstreamClient.postRecording does), waits per delayFor(),
 * and stops on success, on a permanent or held-ambiguous answer, or when
 * the attempts or the time budget run out.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '../errors.js';
import type { UploadInput, UpstreamResponse } from '../imagicle/client.js';
import type { Deliver } from '../pipeline/ingest.js';
import { classify, delayFor, shouldRetry, type AttemptOutcome, type RetryPolicy, type Verdict } from './retry.js';

export interface DeliveryOutcome {
  /** Verdict of the last attempt. */
  verdict: Verdict;
  /** The last attempt allowed another one, but the attempts or the time budget were used up. */
  exhausted: boolean;
  response: UpstreamResponse | undefined;
  error: GatewayError | undefined;
  attempts: number;
  /** Ambiguous attempts that were followed by another one: each may have made a duplicate. */
  ambiguousRetries: number;
  /** Retry-After of the last answer, for whoever schedules the next try. */
  retryAfter: string | undefined;
}

export interface RetryHooks {
  /**
   * Before each attempt (1-based); the spool persists "delivering" here. `skip`: the upload is already where it
   * belongs (Imagicle was found to hold it): nothing is sent, and the delivery ends as a success.
   */
  beforeAttempt?: (attempt: number) => Promise<{ skip: boolean } | void> | { skip: boolean } | void;
  afterAttempt?: (
    attempt: number,
    verdict: Verdict,
    result: { response?: UpstreamResponse; error?: GatewayError },
  ) => Promise<void> | void;
  random?: () => number;
  now?: () => number;
}

/** The retry view of what one attempt produced. */
function outcomeOf(result: {
  response?: UpstreamResponse | undefined;
  error?: GatewayError | undefined;
}): AttemptOutcome {
  if (result.response)
    return { kind: 'answer', status: result.response.status, retryAfter: result.response.retryAfter };
  const detail = result.error?.detail ?? {};
  return {
    kind: 'no-answer',
    code: typeof detail.code === 'string' ? detail.code : undefined,
    bodyComplete: detail.bodyComplete === true,
  };
}

function isAbort(error: GatewayError, signal: AbortSignal | undefined): boolean {
  return error.code === 'ABORTED' || signal?.aborted === true;
}

export async function deliverWithRetry(
  deliver: Deliver,
  upload: UploadInput,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<DeliveryOutcome> {
  const now = hooks.now ?? Date.now;
  const started = now();
  let ambiguousRetries = 0;
  for (let attempt = 1; ; attempt++) {
    const before = await hooks.beforeAttempt?.(attempt);
    if (before?.skip) {
      const verdict: Verdict = 'success';
      return {
        verdict,
        exhausted: false,
        response: undefined,
        error: undefined,
        attempts: attempt - 1,
        ambiguousRetries,
        retryAfter: undefined,
      };
    }
    let response: UpstreamResponse | undefined;
    let error: GatewayError | undefined;
    try {
      response = await deliver(upload);
    } catch (thrown) {
      if (!(thrown instanceof GatewayError) || isAbort(thrown, upload.signal)) throw thrown;
      error = thrown;
    }
    const verdict = classify(outcomeOf({ response, error }), policy);
    await hooks.afterAttempt?.(attempt, verdict, response ? { response } : error ? { error } : {});
    const result = { verdict, response, error, attempts: attempt, ambiguousRetries, retryAfter: response?.retryAfter };
    if (!shouldRetry(verdict, policy)) return { ...result, exhausted: false };
    const delay = delayFor(policy, attempt, response?.retryAfter, hooks.random, now());
    if (attempt >= policy.maxAttempts || now() + delay - started > policy.maxTotalMs)
      return { ...result, exhausted: true };
    if (verdict === 'ambiguous') ambiguousRetries += 1;
    await sleep(delay, undefined, upload.signal ? { signal: upload.signal } : {});
  }
}
