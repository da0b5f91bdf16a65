/**
 * Delivery faults against the embedded emulator, real HTTP and ffmpeg:
 * retries, what is never retried, ambiguity, the spool and its 202, the
 * background worker, the jobs API, duplicates, a full spool, an outage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { startEmulator } from '../../src/emulator/server.js';
import type { JobView } from '../../src/delivery/view.js';
import { WAVEFORM_FILE_RE } from '../../src/delivery/blob-store.js';

const run = promisify(execFile);
/** Small retry settings so that every fault plays out in well under a second or two. */
const FAST = {
  RETRY_MAX_ATTEMPTS: '4',
  RETRY_MIN_DELAY_MS: '50',
  RETRY_MAX_DELAY_MS: '200',
  RETRY_MAX_TOTAL_MS: '2000',
  SPOOL_RETRY_MAX_DELAY_MS: '300',
  IMAGICLE_TIMEOUT_MS: '1000',
  IMAGICLE_CONNECT_TIMEOUT_MS: '500',
  // The rules without reconciliation (ambiguous → held, or RETRY_AMBIGUOUS); with it: test/e2e/reconcile.test.ts.
  RECONCILE: 'off',
};

let dir: string;
/** 1000 s of 8 kHz 16-bit mono: 16 MB, far more than the socket buffers, so a reset mid-body is mid-body. */
let big: string;
let t: TestGateway;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'delivery-'));
  big = path.join(dir, 'big.wav');
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=440:r=8000:d=1000', '-c:a', 'pcm_s16le', '-y', big]);
  t = await startTestGateway(FAST);
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const post = async (
  g: TestGateway | string,
  file = fixture('pcm16-mono.wav'),
  metadata: unknown = SAMPLE_METADATA,
  headers: Record<string, string> = {},
  route = RECORDINGS_PATH,
) =>
  fetch(`${typeof g === 'string' ? g : g.url}${route}`, {
    method: 'POST',
    body: await recordingForm(file, metadata),
    headers,
  });
const requests = (g: TestGateway): number => g.emulator.stats.snapshot().requests;
const job = async (base: string, id: string): Promise<JobView> =>
  (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as JobView;

async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('in-request retries', () => {
  it("503 twice, then 201: one recording, three requests, Imagicle's answer", async () => {
    const before = { stored: t.emulator.store.list().length, requests: requests(t) };
    t.emulator.faults.add({ status: 503, count: 2 });
    const res = await post(t);
    expect(res.status).toBe(201);
    const id = (await res.json()) as string;
    expect(t.emulator.store.list().length).toBe(before.stored + 1);
    expect(t.emulator.store.list().at(-1)!.id).toBe(id);
    expect(requests(t) - before.requests).toBe(3);
    const jobId = res.headers.get('x-job-id')!;
    expect(await job(t.url, jobId)).toMatchObject({
      state: 'delivered',
      attempts: 3,
      possibleDuplicates: 0,
      upstreamIds: [id],
    });
  });

  it('honours Retry-After', async () => {
    t.emulator.faults.add({ status: 429, retryAfter: 1 });
    const started = Date.now();
    const res = await post(t);
    expect(res.status).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('a connection reset mid-body is retried: one recording', async () => {
    const before = { stored: t.emulator.store.list().length, requests: requests(t) };
    t.emulator.faults.add({ resetAfterBodyBytes: 64 * 1024 });
    const res = await post(t, big);
    expect(res.status).toBe(201);
    expect(t.emulator.store.list().length).toBe(before.stored + 1);
    expect(requests(t) - before.requests).toBe(2);
  });

  it.each([400, 409])(
    '%i is not retried and comes back as it came; the job stays visible as failed',
    async (status) => {
      const before = requests(t);
      const body = { reason: 1, message: `upstream says ${status}` };
      t.emulator.faults.add({ status, body });
      const res = await post(t);
      expect(res.status).toBe(status);
      expect(await res.json()).toEqual(body);
      expect(requests(t) - before).toBe(1);
      const jobId = res.headers.get('x-job-id')!;
      const job = await fetch(`${t.url}/v1/jobs/${jobId}`);
      expect(job.status).toBe(200);
      const view = (await job.json()) as { state: string; lastError: { status: number; body: unknown } };
      expect(view.state).toBe('failed');
      expect(view.lastError).toMatchObject({ status, body });
    },
  );
});

describe('ambiguous: slow headers (the import goes on after the gateway gave up)', () => {
  it('default (RETRY_AMBIGUOUS=false): 504, held as a failed job, one recording, no duplicate', async () => {
    const before = { stored: t.emulator.store.list().length, requests: requests(t) };
    t.emulator.faults.add({ delayMs: 1500 });
    const res = await post(t);
    expect(res.status).toBe(504);
    const jobId = res.headers.get('x-job-id')!;
    expect(res.headers.get('location')).toBe(`/v1/jobs/${jobId}`);
    expect(requests(t) - before.requests).toBe(1);
    await until(
      () => t.emulator.store.list().length,
      (n) => n > before.stored,
      3000,
    );
    expect(t.emulator.store.list().length).toBe(before.stored + 1);
    expect(await job(t.url, jobId)).toMatchObject({
      state: 'failed',
      lastError: { ambiguous: true, code: 'UND_ERR_HEADERS_TIMEOUT' },
    });
    // The operator saw it arrived: forget the job.
    expect((await fetch(`${t.url}/v1/jobs/${jobId}`, { method: 'DELETE' })).status).toBe(204);
  });

  it('RETRY_AMBIGUOUS=true: delivered, and the duplicate it made is counted', async () => {
    const g = await startTestGateway({ ...FAST, RETRY_AMBIGUOUS: 'true' });
    try {
      g.emulator.faults.add({ delayMs: 1500 });
      const res = await post(g);
      expect(res.status).toBe(201);
      await until(
        () => g.emulator.store.list().length,
        (n) => n >= 2,
        3000,
      );
      expect(g.emulator.store.list().length).toBe(2);
      expect(await job(g.url, res.headers.get('x-job-id')!)).toMatchObject({
        state: 'delivered',
        possibleDuplicates: 1,
      });
    } finally {
      await g.close();
    }
  });
});

describe('the spool: 202, background delivery, the jobs API', () => {
  it('503 beyond the in-request budget: 202 + Location, then delivered by the worker', async () => {
    const before = t.emulator.store.list().length;
    t.emulator.faults.add({ status: 503, count: 6 });
    const res = await post(t);
    expect(res.status).toBe(202);
    const body = (await res.json()) as { jobId: string; state: string };
    expect(res.headers.get('location')).toBe(`/v1/jobs/${body.jobId}`);
    expect(body.state).toBe('ready');
    const done = await until(
      () => job(t.url, body.jobId),
      (j) => j.state === 'delivered',
    );
    expect(done).toMatchObject({ state: 'delivered', attempts: 7 });
    expect(done.upstreamIds).toHaveLength(1);
    expect(t.emulator.store.list().length).toBe(before + 1);
  });

  it('Prefer: respond-async: 202 at once, transcoded and delivered in the background', async () => {
    const before = t.emulator.store.list().length;
    const res = await post(t, fixture('opus-stereo.opus'), SAMPLE_METADATA, { Prefer: 'respond-async' });
    expect(res.status).toBe(202);
    expect(res.headers.get('preference-applied')).toBe('respond-async');
    const { jobId, state } = (await res.json()) as { jobId: string; state: string };
    expect(state).toBe('received');
    const done = await until(
      () => job(t.url, jobId),
      (j) => j.state === 'delivered',
    );
    expect(done).toMatchObject({ state: 'delivered', decision: 'transcode' });
    expect(t.emulator.store.list().length).toBe(before + 1);
    expect(t.emulator.store.list().at(-1)!.id).toBe(done.upstreamIds[0]);
  });

  it('a permanent answer in the background: failed with the answer kept; retry; delete', async () => {
    t.emulator.faults.add({ status: 403, body: { reason: 0, message: 'no privileges' } });
    const res = await post(t, fixture('pcm16-mono.wav'), SAMPLE_METADATA, { Prefer: 'respond-async' });
    const { jobId } = (await res.json()) as { jobId: string };
    const failed = await until(
      () => job(t.url, jobId),
      (j) => j.state === 'failed',
    );
    expect(failed.lastError).toMatchObject({ status: 403, body: { message: 'no privileges' }, ambiguous: false });
    const listed = (await (await fetch(`${t.url}/v1/jobs?state=failed`)).json()) as { jobs: JobView[] };
    expect(listed.jobs.map((j) => j.jobId)).toContain(jobId);
    expect((await fetch(`${t.url}/v1/jobs?state=bogus`)).status).toBe(400);
    const retried = await fetch(`${t.url}/v1/jobs/${jobId}/retry`, { method: 'POST' });
    expect(retried.status).toBe(202);
    expect(
      await until(
        () => job(t.url, jobId),
        (j) => j.state === 'delivered',
      ),
    ).toMatchObject({ state: 'delivered' });
    expect((await fetch(`${t.url}/v1/jobs/${jobId}/retry`, { method: 'POST' })).status).toBe(409);
    expect((await fetch(`${t.url}/v1/jobs/${jobId}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${t.url}/v1/jobs/${jobId}`)).status).toBe(404);
  });

  it('leaves no audio in the spool once everything is delivered', async () => {
    const spoolJobs = path.join(path.dirname(t.tmpDir), 'spool', 'jobs');
    for (const id of await readdir(spoolJobs)) {
      const entries = await readdir(path.join(spoolJobs, id));
      const view = await job(t.url, id);
      // No audio stays: the journal, and the console's waveform pictures (docs/observability.md).
      if (view.state === 'delivered') expect(entries.filter((e) => !WAVEFORM_FILE_RE.test(e))).toEqual(['job.json']);
    }
    expect(await t.settledTempEntries()).toEqual([]);
  });
});

describe('duplicates (DEDUP_WINDOW)', () => {
  it('the same recording twice: one upload to Imagicle, the second gets the first answer and X-Duplicate-Of', async () => {
    const g = await startTestGateway({ ...FAST, DEDUP_WINDOW: '24h' });
    try {
      const metadata = { ...SAMPLE_METADATA, pbxCallId: 'dup-1' };
      const first = await post(g, fixture('pcm16-mono.wav'), metadata);
      expect(first.status).toBe(201);
      const firstBody = await first.text();
      const second = await post(g, fixture('pcm16-mono.wav'), metadata);
      expect(second.status).toBe(201);
      expect(await second.text()).toBe(firstBody);
      expect(second.headers.get('x-duplicate-of')).toBe(first.headers.get('x-job-id'));
      expect(g.emulator.store.list()).toHaveLength(1);
      // Another call id, or other audio: not a duplicate.
      expect((await post(g, fixture('pcm16-mono.wav'), { ...metadata, pbxCallId: 'dup-2' })).status).toBe(201);
      expect((await post(g, fixture('alaw-mono.wav'), metadata)).status).toBe(201);
      expect(g.emulator.store.list()).toHaveLength(3);
    } finally {
      await g.close();
    }
  });

  it("DEDUP_ANSWER=conflict: 409 in Imagicle's shape", async () => {
    const g = await startTestGateway({ ...FAST, DEDUP_WINDOW: '1h', DEDUP_ANSWER: 'conflict' });
    try {
      expect((await post(g)).status).toBe(201);
      const again = await post(g);
      expect(again.status).toBe(409);
      expect(await again.json()).toMatchObject({ reason: 0, message: expect.stringMatching(/already received/) });
      expect(g.emulator.store.list()).toHaveLength(1);
    } finally {
      await g.close();
    }
  });
});

describe('limits and modes', () => {
  it("a full spool: 503 + Retry-After in Imagicle's shape, nothing sent", async () => {
    const g = await startTestGateway({ ...FAST, SPOOL_MAX_BYTES: String(1024 * 1024) });
    try {
      const res = await post(g, big);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('60');
      expect(await res.json()).toMatchObject({ reason: 0, message: expect.stringMatching(/spool is full/) });
      expect(requests(g)).toBe(0);
    } finally {
      await g.close();
    }
  });

  it('DELIVERY=sync: Imagicle unreachable → 502 after the retries, nothing spooled', async () => {
    const port = await freePort();
    const g = await startTestGateway({ ...FAST, DELIVERY: 'sync', IMAGICLE_URL: `http://127.0.0.1:${port}` });
    try {
      const res = await post(g);
      expect(res.status).toBe(502);
      expect(g.gateway.delivery).toBeUndefined();
      expect((await fetch(`${g.url}/v1/jobs`)).status).toBe(404);
    } finally {
      await g.close();
    }
  });

  it('Imagicle down for a while, then up: 202, then delivered once it is back', async () => {
    const port = await freePort();
    const g = await startTestGateway({ ...FAST, IMAGICLE_URL: `http://127.0.0.1:${port}` });
    const storage = path.join(dir, 'late-emulator');
    let emulator: Awaited<ReturnType<typeof startEmulator>> | undefined;
    try {
      const res = await post(g);
      expect(res.status).toBe(202);
      const { jobId } = (await res.json()) as { jobId: string };
      // A 20-second outage, the worker backing off (300 ms cap here) all along.
      await new Promise((r) => setTimeout(r, 20_000));
      // Still pending: between attempts ('ready') or in one that is failing ('delivering').
      expect(['ready', 'delivering']).toContain((await job(g.url, jobId)).state);
      emulator = await startEmulator({ port, storageDir: storage });
      const done = await until(
        () => job(g.url, jobId),
        (j) => j.state === 'delivered',
        5000,
      );
      expect(done.state).toBe('delivered');
      expect(emulator.store.list()).toHaveLength(1);
      expect(done.attempts).toBeGreaterThan(4);
      expect(done.possibleDuplicates).toBe(0);
    } finally {
      await g.close();
      await emulator?.close();
    }
  }, 60_000);
});
