/**
 * The upstream breaker's one rule (delivery/breaker.ts), kept in process memory (the spool's UpstreamBreaker) and
 * in Redis for every worker process (distributed/shared-breaker.ts, on a private redis-server): both holders go
 * through the same states for the same runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pino from 'pino';
import { MAX_OPEN_MS, openFor, stepAfter, UpstreamBreaker } from '../../src/delivery/breaker.js';
import type { JobError } from '../../src/delivery/job.js';
import type { Settlement } from '../../src/delivery/job-life.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../src/delivery/retry.js';
import { redisOptionsFrom } from '../../src/distributed/redis.js';
import { SharedBreaker } from '../../src/distributed/shared-breaker.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';

const skip = redisUnavailable();
const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, minDelayMs: 300, factor: 2, maxDelayMs: 300 };
const refused: JobError = {
  at: new Date().toISOString(),
  part: 1,
  status: 503,
  code: undefined,
  message: 'Imagicle answered 503',
  body: undefined,
  ambiguous: false,
};
const rejected: JobError = { ...refused, status: 400, message: 'Imagicle answered 400' };
const retry: Settlement = { kind: 'retry', delayMs: 100, backpressure: true };
const delivered: Settlement = { kind: 'delivered' };
const failed: Settlement = { kind: 'failed', held: false };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the breaker rule', () => {
  it('a delivery closes; Imagicle trouble trips unless already open; anything else leaves it', () => {
    expect(stepAfter(delivered, undefined, 'half-open')).toBe('close');
    expect(stepAfter(retry, refused, 'closed')).toBe('trip');
    expect(stepAfter(retry, refused, 'half-open')).toBe('trip');
    // A delivery under way when the breaker opened: its failure says nothing new.
    expect(stepAfter(retry, refused, 'open')).toBe('none');
    expect(stepAfter(failed, rejected, 'closed')).toBe('none');
    expect(stepAfter(retry, { ...refused, part: undefined }, 'closed')).toBe('none');
  });

  it("opens for the worker's backoff, at most MAX_OPEN_MS, unless Imagicle asked for longer", () => {
    const slow = { ...policy, maxDelayMs: 300_000 };
    expect(openFor(slow, 20, retry)).toBeLessThanOrEqual(MAX_OPEN_MS);
    expect(openFor(slow, 20, retry)).toBeGreaterThanOrEqual(MAX_OPEN_MS / 2);
    expect(openFor(slow, 20, { ...retry, delayMs: 120_000 })).toBe(120_000);
  });

  it('in memory (spool): four slots failing at once open it once; one probe when half-open', () => {
    const breaker = new UpstreamBreaker(policy);
    const now = Date.now();
    for (let i = 0; i < 4; i++) breaker.record(retry, refused, now);
    expect(breaker.current(now)).toBe('open');
    expect(breaker.allows(now, 0)).toBe(false);
    // One trip: the backoff is the first one's (≤ 300 ms), not the fourth's.
    expect(breaker.current(now + 301)).toBe('half-open');
    expect(breaker.allows(now + 301, 0)).toBe(true);
    expect(breaker.allows(now + 301, 1)).toBe(false);
    breaker.record(delivered, undefined, now + 400);
    expect(breaker.isClosed()).toBe(true);
  });
});

describe.skipIf(skip !== undefined)('the breaker shared in Redis', () => {
  let redis: TestRedis;
  let clients: Redis[] = [];
  const breakerOn = (client: Redis): SharedBreaker =>
    new SharedBreaker(client, policy, 2000, pino({ level: 'silent' }));
  beforeAll(async () => {
    redis = await TestRedis.start();
    clients = [new Redis(redisOptionsFrom(redis.url)), new Redis(redisOptionsFrom(redis.url))];
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
  });

  it('two processes see one state: tripped once by failures at once, one probe turn, closed by its delivery', async () => {
    const [a, b] = clients.map(breakerOn) as [SharedBreaker, SharedBreaker];
    expect(await a.state()).toBe('closed');
    // Every slot of both processes fails at once: one trip.
    await Promise.all([a, b, a, b].map((breaker) => breaker.record(retry, refused)));
    expect(await clients[0]!.get('igw:breaker:failures')).toBe('1');
    expect(await b.state()).toBe('open');
    expect(await a.tryProbe()).toBeUndefined();
    await sleep(350);
    expect(await b.state()).toBe('half-open');
    // One turn, whoever asks first; the other process is refused until it is released.
    const turns = await Promise.all([a.tryProbe(), b.tryProbe(), a.tryProbe()]);
    expect(turns.filter((t) => t !== undefined)).toHaveLength(1);
    expect(await a.probing()).toBe(true);
    // The probe fails: open again, the second trip in a row.
    expect(await b.record(retry, refused)).toBe('open');
    await turns.find((t) => t !== undefined)!.release();
    expect(await clients[1]!.get('igw:breaker:failures')).toBe('2');
    await sleep(350);
    const probe = await b.tryProbe();
    expect(probe).toBeDefined();
    // A refusal of the recording itself (400) says nothing about Imagicle.
    expect(await b.record(failed, rejected)).toBe('half-open');
    expect(await b.record(delivered, undefined)).toBe('closed');
    await probe!.release();
    expect(await a.state()).toBe('closed');
    expect(await a.probing()).toBe(false);
  });

  it("a probe holder that died gives its turn up after the turn's time", async () => {
    const breaker = breakerOn(clients[0]!);
    await breaker.record(retry, refused);
    await sleep(350);
    expect(await breaker.tryProbe()).toBeDefined();
    expect(await breaker.tryProbe()).toBeUndefined();
    await sleep(2100);
    expect(await breaker.tryProbe()).toBeDefined();
  });
});
