/** The retry policy: pure delay, Retry-After, classification, and the retry loop against a scripted Deliver. */
import { describe, expect, it } from 'vitest';
import {
  classify,
  delayFor,
  DEFAULT_RETRY_POLICY,
  parseRetryAfter,
  shouldRetry,
  type RetryPolicy,
} from '../../src/delivery/retry.js';
import { deliverWithRetry } from '../../src/delivery/retrying-deliver.js';
import { parseInterval } from '../../src/delivery/interval.js';
import { GatewayError } from '../../src/errors.js';
import type { UploadInput, UpstreamResponse } from '../../src/imagicle/client.js';

const policy: RetryPolicy = {
  ...DEFAULT_RETRY_POLICY,
  minDelayMs: 100,
  factor: 2,
  maxDelayMs: 1000,
  maxAttempts: 5,
  maxTotalMs: 60_000,
};

describe('delayFor', () => {
  it('grows exponentially, capped, with equal jitter', () => {
    expect(delayFor(policy, 1, undefined, () => 0)).toBe(50);
    expect(delayFor(policy, 1, undefined, () => 1)).toBe(100);
    expect(delayFor(policy, 3, undefined, () => 1)).toBe(400);
    expect(delayFor(policy, 10, undefined, () => 1)).toBe(1000);
    expect(delayFor(policy, 10, undefined, () => 0)).toBe(500);
  });
  it('honours Retry-After in seconds and as an HTTP date, never waiting less', () => {
    expect(delayFor(policy, 1, '3', () => 0)).toBe(3000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(delayFor(policy, 1, 'Thu, 01 Jan 2026 00:00:07 GMT', () => 0, now)).toBe(7000);
    // A Retry-After shorter than the backoff does not shorten it.
    expect(delayFor(policy, 4, '0', () => 1)).toBe(800);
  });
  it('ignores an unreadable Retry-After', () => {
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter('-1')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(delayFor(policy, 1, 'garbage', () => 1)).toBe(100);
  });
});

describe('classify', () => {
  it.each([
    [201, 'success'],
    [200, 'success'],
    [503, 'retry'],
    [429, 'retry'],
    [408, 'retry'],
    [500, 'ambiguous'],
    [502, 'ambiguous'],
    [504, 'ambiguous'],
    [400, 'permanent'],
    [401, 'permanent'],
    [403, 'permanent'],
    [409, 'permanent'],
    [501, 'permanent'],
    [302, 'permanent'],
  ] as const)('%i → %s', (status, verdict) => {
    expect(classify({ kind: 'answer', status })).toBe(verdict);
  });
  it('no answer: retry when the body was not all sent, ambiguous when it was', () => {
    expect(classify({ kind: 'no-answer', code: 'ECONNREFUSED', bodyComplete: false })).toBe('retry');
    expect(classify({ kind: 'no-answer', code: 'ECONNRESET', bodyComplete: false })).toBe('retry');
    expect(classify({ kind: 'no-answer', code: 'UND_ERR_HEADERS_TIMEOUT', bodyComplete: true })).toBe('ambiguous');
  });
  it('ambiguous is retried only when the policy says so', () => {
    expect(shouldRetry('ambiguous', { retryAmbiguous: false })).toBe(false);
    expect(shouldRetry('ambiguous', { retryAmbiguous: true })).toBe(true);
    expect(shouldRetry('permanent', { retryAmbiguous: true })).toBe(false);
  });
});

describe('parseInterval', () => {
  it.each([
    ['3d', 3 * 86_400_000],
    ['24h', 86_400_000],
    ['90m', 5_400_000],
    ['45', 45_000],
    ['1.5s', 1500],
    ['250ms', 250],
    ['0', 0],
  ])('%s', (text, ms) => expect(parseInterval(text)).toBe(ms));
  it('refuses what is not a duration', () => {
    expect(parseInterval('3 days')).toBeUndefined();
    expect(parseInterval('-1')).toBeUndefined();
  });
});

const upload: UploadInput = {
  metadata: {},
  audioPath: '/dev/null',
  audioBytes: 0,
  contentType: 'audio/wave',
  filename: 'a.wav',
};
const answer = (status: number, retryAfter?: string): UpstreamResponse => ({
  status,
  contentType: 'application/json',
  body: '"id"',
  json: 'id',
  retryAfter,
  elapsedMs: 1,
});
const noAnswer = (bodyComplete: boolean): GatewayError =>
  new GatewayError('UPSTREAM_UNREACHABLE', 'down', { detail: { code: 'ECONNRESET', bodyComplete } });

function scripted(steps: Array<UpstreamResponse | GatewayError>) {
  let calls = 0;
  const deliver = async (): Promise<UpstreamResponse> => {
    const step = steps[Math.min(calls, steps.length - 1)]!;
    calls += 1;
    if (step instanceof GatewayError) throw step;
    return step;
  };
  return { deliver, calls: () => calls };
}

const fast: RetryPolicy = { ...policy, minDelayMs: 1, maxDelayMs: 2 };

describe('deliverWithRetry', () => {
  it('503, 503, 201: three attempts, success', async () => {
    const s = scripted([answer(503), answer(503), answer(201)]);
    const out = await deliverWithRetry(s.deliver, upload, fast);
    expect(out).toMatchObject({ verdict: 'success', attempts: 3, exhausted: false });
    expect(s.calls()).toBe(3);
  });
  it.each([400, 401, 403, 409, 501])('%i is not retried', async (status) => {
    const s = scripted([answer(status), answer(201)]);
    const out = await deliverWithRetry(s.deliver, upload, fast);
    expect(out).toMatchObject({ verdict: 'permanent', attempts: 1 });
    expect(s.calls()).toBe(1);
  });
  it('a reset before the end of the body is retried; after it, held', async () => {
    const early = scripted([noAnswer(false), answer(201)]);
    expect(await deliverWithRetry(early.deliver, upload, fast)).toMatchObject({ verdict: 'success', attempts: 2 });
    const late = scripted([noAnswer(true), answer(201)]);
    expect(await deliverWithRetry(late.deliver, upload, fast)).toMatchObject({
      verdict: 'ambiguous',
      attempts: 1,
      exhausted: false,
    });
    const retried = scripted([noAnswer(true), answer(201)]);
    expect(await deliverWithRetry(retried.deliver, upload, { ...fast, retryAmbiguous: true })).toMatchObject({
      verdict: 'success',
      attempts: 2,
      ambiguousRetries: 1,
    });
  });
  it('stops at maxAttempts, and before a delay that would pass maxTotalMs', async () => {
    const s = scripted([answer(503)]);
    expect(await deliverWithRetry(s.deliver, upload, { ...fast, maxAttempts: 3 })).toMatchObject({
      verdict: 'retry',
      exhausted: true,
      attempts: 3,
    });
    const t = scripted([answer(503, '3600')]);
    const out = await deliverWithRetry(t.deliver, upload, fast);
    expect(out).toMatchObject({ verdict: 'retry', exhausted: true, attempts: 1, retryAfter: '3600' });
  });
  it('an abort stops at once', async () => {
    const controller = new AbortController();
    const s = scripted([answer(503)]);
    const pending = deliverWithRetry(
      s.deliver,
      { ...upload, signal: controller.signal },
      { ...fast, minDelayMs: 5000, maxDelayMs: 5000 },
    );
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toThrow();
    expect(s.calls()).toBe(1);
  });
});
