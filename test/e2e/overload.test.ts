/**
 * Overload: at most CONCURRENCY processes, QUEUE_LIMIT jobs waiting, then 503
 * with Retry-After in Imagicle's shape; a short upload is not stuck behind
 * long ones. Each step waits for the queue's own state, not for time.
 * DELIVERY=sync: a job ends with its request, so aborting a client frees its
 * slot (under DELIVERY=wait a received upload is finished in the background).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { childrenOf, waitFor, writeLongG729 } from '../helpers/hostile.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { liveProcessCount } from '../../src/media/process.js';

let dir: string;
let longInput: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'overload-'));
  longInput = await writeLongG729(path.join(dir, 'long.g729'), 7200);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Pending {
  abort(): void;
  response: Promise<Response | Error>;
}

async function start(t: TestGateway, file: string): Promise<Pending> {
  const controller = new AbortController();
  const response = fetch(`${t.url}${RECORDINGS_PATH}`, {
    method: 'POST',
    body: await recordingForm(file),
    signal: controller.signal,
  }).catch((error: unknown) => error as Error);
  return { abort: () => controller.abort(), response };
}

const transcoding = async (): Promise<number> =>
  (await childrenOf(process.pid)).filter((c) => c.argv.includes('-progress')).length;

describe('CONCURRENCY=1, QUEUE_LIMIT=1', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ DELIVERY: 'sync', CONCURRENCY: '1', QUEUE_LIMIT: '1' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('runs one, queues one, refuses the next with 503 + Retry-After', async () => {
    const long = await start(t, longInput);
    expect(
      await waitFor(async () => t.gateway.processSlots.stats().running === 1 && (await transcoding()) === 1, 20_000),
    ).toBe(true);

    const queued = await start(t, fixture('opus-stereo.opus'));
    expect(await waitFor(() => t.gateway.processSlots.stats().waiting === 1)).toBe(true);
    expect(liveProcessCount()).toBe(1);

    const refused = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await recordingForm(fixture('pcm16-mono.wav')),
    });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toEqual({
      reason: 0,
      message: expect.stringMatching(/busy.*retry later/) as unknown as string,
    });
    expect(t.gateway.processSlots.stats()).toMatchObject({ running: 1, waiting: 1, refused: 1 });

    long.abort();
    const done = await queued.response;
    expect(done).toBeInstanceOf(Response);
    expect((done as Response).status).toBe(201);
    expect(await waitFor(async () => (await t.tempEntries()).length === 0 && liveProcessCount() === 0)).toBe(true);
    expect(t.gateway.processSlots.stats()).toMatchObject({ running: 0, waiting: 0 });
  });
});

describe('lanes: CONCURRENCY=2, LONG_JOB_BYTES=1000000', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ DELIVERY: 'sync', CONCURRENCY: '2', QUEUE_LIMIT: '4', LONG_JOB_BYTES: '1000000' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a short upload passes two long ones (one running, one waiting)', async () => {
    const first = await start(t, longInput);
    expect(
      await waitFor(
        async () => t.gateway.processSlots.stats().runningLong === 1 && (await transcoding()) === 1,
        20_000,
      ),
    ).toBe(true);
    const second = await start(t, longInput);
    // Long jobs may hold CONCURRENCY-1 slots: the second waits although a slot is free.
    expect(await waitFor(() => t.gateway.processSlots.stats().waitingLong === 1)).toBe(true);
    expect(t.gateway.processSlots.stats()).toMatchObject({ running: 1, runningLong: 1 });

    const short = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await recordingForm(fixture('opus-stereo.opus')),
    });
    expect(short.status).toBe(201);
    // Served while both long jobs are still where they were.
    expect(t.gateway.processSlots.stats()).toMatchObject({ runningLong: 1, waitingLong: 1 });

    first.abort();
    // The waiting long job gets the slot the first one freed.
    expect(
      await waitFor(
        async () => t.gateway.processSlots.stats().waitingLong === 0 && (await transcoding()) === 1,
        20_000,
      ),
    ).toBe(true);
    second.abort();
    await Promise.all([first.response, second.response]);
    expect(await waitFor(async () => (await t.tempEntries()).length === 0 && liveProcessCount() === 0)).toBe(true);
  });
});
