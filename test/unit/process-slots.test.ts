/** The process slots' rules, and the process gate with real children. */
import { describe, expect, it } from 'vitest';
import { ProcessSlots } from '../../src/pipeline/process-slots.js';
import { GatewayError } from '../../src/errors.js';
import { liveProcessCount, runProcess, runWithProcessGate } from '../../src/media/process.js';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function track(queue: ProcessSlots, lane: 'short' | 'long', log: string[], name: string, signal?: AbortSignal) {
  let release: (() => void) | undefined;
  const p = queue.acquire(lane, signal).then((r) => {
    log.push(name);
    release = r;
  });
  return { p, release: () => release?.() };
}

describe('ProcessSlots', () => {
  it('runs at most `concurrency` at once, then in arrival order', async () => {
    const q = new ProcessSlots({ concurrency: 2, queueLimit: 10, longJobBytes: 100 });
    const log: string[] = [];
    const jobs = ['a', 'b', 'c', 'd'].map((n) => track(q, 'short', log, n));
    await flush();
    expect(log).toEqual(['a', 'b']);
    expect(q.stats()).toMatchObject({ running: 2, waiting: 2 });
    jobs[1]!.release();
    await flush();
    expect(log).toEqual(['a', 'b', 'c']);
    jobs[0]!.release();
    jobs[2]!.release();
    await flush();
    expect(log).toEqual(['a', 'b', 'c', 'd']);
    jobs[3]!.release();
    expect(q.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it("a patient gate (the watched folder's) waits for a slot where an upload's gate is refused", async () => {
    const q = new ProcessSlots({ concurrency: 1, queueLimit: 0, longJobBytes: 100 });
    const release = await q.acquire('short', undefined);
    await expect(q.gateFor(() => 10).acquire(undefined)).rejects.toBeInstanceOf(GatewayError);
    let admitted = false;
    const waiting = q
      .patientGateFor(10)
      .acquire(undefined)
      .then((r) => {
        admitted = true;
        return r;
      });
    await flush();
    expect(admitted).toBe(false);
    expect(q.stats()).toMatchObject({ running: 1, waiting: 1 });
    release();
    const second = await waiting;
    expect(q.stats()).toMatchObject({ running: 1, waiting: 0 });
    second();
    expect(q.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it('refuses beyond queueLimit with 503, Retry-After and Imagicle shape', async () => {
    const q = new ProcessSlots({ concurrency: 1, queueLimit: 1, longJobBytes: 100 });
    const log: string[] = [];
    track(q, 'short', log, 'a');
    track(q, 'short', log, 'b');
    expect(q.isFull()).toBe(true);
    const error = await q.acquire('short', undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    const gw = error as GatewayError;
    expect(gw.status).toBe(503);
    expect(Number(gw.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    expect(gw.toBody()).toEqual({ reason: 0, message: expect.stringContaining('busy') as unknown as string });
    expect(q.stats().refused).toBe(1);
  });

  it('keeps a slot for short jobs: long ones hold at most concurrency - 1', async () => {
    const q = new ProcessSlots({ concurrency: 3, queueLimit: 10, longJobBytes: 100 });
    const log: string[] = [];
    const l1 = track(q, 'long', log, 'L1');
    track(q, 'long', log, 'L2');
    track(q, 'long', log, 'L3');
    track(q, 'short', log, 'S1');
    await flush();
    expect(log).toEqual(['L1', 'L2', 'S1']);
    expect(q.stats()).toMatchObject({ running: 3, runningLong: 2, waitingLong: 1 });
    l1.release();
    await flush();
    expect(log).toEqual(['L1', 'L2', 'S1', 'L3']);
  });

  it('with one slot, the oldest waiter goes first whatever its lane', async () => {
    const q = new ProcessSlots({ concurrency: 1, queueLimit: 10, longJobBytes: 100 });
    const log: string[] = [];
    const a = track(q, 'short', log, 'S0');
    const b = track(q, 'long', log, 'L1');
    track(q, 'short', log, 'S2');
    await flush();
    a.release();
    await flush();
    b.release();
    await flush();
    expect(log).toEqual(['S0', 'L1', 'S2']);
  });

  it('a waiter that aborts leaves the queue', async () => {
    const q = new ProcessSlots({ concurrency: 1, queueLimit: 10, longJobBytes: 100 });
    const log: string[] = [];
    const a = track(q, 'short', log, 'a');
    const controller = new AbortController();
    const b = track(q, 'short', log, 'b', controller.signal);
    track(q, 'short', log, 'c');
    controller.abort();
    await expect(b.p).rejects.toThrow();
    expect(q.stats().waiting).toBe(1);
    a.release();
    await flush();
    expect(log).toEqual(['a', 'c']);
  });

  it('a job that got a slot once is never refused later (no failure half-way)', async () => {
    const q = new ProcessSlots({ concurrency: 1, queueLimit: 0, longJobBytes: 100 });
    const gate = q.gateFor(() => 10);
    const release = await gate.acquire(undefined);
    const other = await q.acquire('short', undefined).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(GatewayError);
    const second = gate.acquire(undefined); // queued although the queue is "full"
    release();
    await expect(second).resolves.toBeTypeOf('function');
  });

  it('classifies jobs by upload size', () => {
    const q = new ProcessSlots({ concurrency: 2, queueLimit: 1, longJobBytes: 1000 });
    expect(q.laneFor(999)).toBe('short');
    expect(q.laneFor(1000)).toBe('long');
  });
});

describe('runWithProcessGate', () => {
  it('never lets more than CONCURRENCY real processes run', async () => {
    const q = new ProcessSlots({ concurrency: 2, queueLimit: 20, longJobBytes: 1e9 });
    let peak = 0;
    const timer = setInterval(() => {
      peak = Math.max(peak, liveProcessCount());
    }, 2);
    await runWithProcessGate(
      q.gateFor(() => 0),
      () => Promise.all(Array.from({ length: 8 }, () => runProcess('sleep', ['0.1'], { timeoutMs: 5000 }))),
    );
    clearInterval(timer);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
    expect(q.stats()).toMatchObject({ running: 0, waiting: 0 });
  });
});
