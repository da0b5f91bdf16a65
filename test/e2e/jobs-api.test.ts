/**
 * One jobs API (issue 19): the same answers in spool mode and in the distributed mode (QUEUE_URL, ROLE=all in
 * one process over a private redis-server). The same suite runs against both: paging with a cursor, filters,
 * counts per state, owner scoping, ids of any shape (404, never 500), retry of a refused job, delete, waveforms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const KEY_A = 'jobs-api-tenant-a-0123456789';
const KEY_B = 'jobs-api-tenant-b-9876543210';
const A = { 'x-api-key': KEY_A };
const B = { 'x-api-key': KEY_B };
const SETTINGS = {
  GATEWAY_API_KEYS: `${KEY_A},${KEY_B}`,
  RETRY_MIN_DELAY_MS: '10',
  RETRY_MAX_DELAY_MS: '50',
  RETRY_MAX_TOTAL_MS: '1000',
  SPOOL_RETRY_MAX_DELAY_MS: '200',
};

interface Page {
  jobs: Array<{ jobId: string; state: string; door?: string; metadata?: { pbxCallId?: string } }>;
  count: number;
  nextCursor?: string;
  counts: Record<string, number>;
}

const redisMissing = redisUnavailable();
const modes = ['spool', ...(redisMissing ? [] : ['distributed'])] as const;
if (redisMissing) console.warn(`the distributed half of the jobs API suite is skipped: ${redisMissing}`);

describe.each(modes)('the jobs API (%s mode)', (mode) => {
  let t: TestGateway;
  let redis: TestRedis | undefined;
  let blobRoot: string | undefined;
  const ids: string[] = [];
  let refusedId = '';

  const get = async (query: string, headers = A): Promise<Page> =>
    (await (await fetch(`${t.url}/v1/jobs${query}`, { headers })).json()) as Page;

  async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await what();
      if (ok(v) || Date.now() > end) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    let extra: Record<string, string> = {};
    if (mode === 'distributed') {
      redis = await TestRedis.start();
      blobRoot = await mkdtemp(path.join(os.tmpdir(), 'jobs-api-blob-'));
      extra = { QUEUE_URL: redis.url, BLOB_DIR: blobRoot, QUEUE_LOCK_MS: '2000' };
    }
    t = await startTestGateway({ ...SETTINGS, ...extra });
    for (let i = 0; i < 4; i++) {
      const body = await recordingForm(fixture('pcm16-mono.wav'), {
        ...SAMPLE_METADATA,
        pbxCallId: `jobs-api-${mode}-${i}`,
      });
      const res = await fetch(`${t.url}${RECORDINGS_PATH}`, { method: 'POST', headers: A, body });
      expect(res.status).toBe(201);
      ids.push(res.headers.get('x-job-id')!);
    }
    // One that Imagicle refuses for good: kept, listed as failed, retryable.
    t.emulator.faults.add({ status: 400, body: { reason: 1, message: 'no such user' } });
    const body = await recordingForm(fixture('pcm16-mono.wav'), { ...SAMPLE_METADATA, pbxCallId: `refused-${mode}` });
    const refused = await fetch(`${t.url}${RECORDINGS_PATH}`, { method: 'POST', headers: A, body });
    expect(refused.status).toBe(400);
    refusedId = refused.headers.get('x-job-id')!;
    expect(refusedId).toBeTruthy();
    // Another tenant's job must never change tenant A's pages or counts.
    const other = await recordingForm(fixture('pcm16-mono.wav'), { ...SAMPLE_METADATA, pbxCallId: `other-${mode}` });
    expect((await fetch(`${t.url}${RECORDINGS_PATH}`, { method: 'POST', headers: B, body: other })).status).toBe(201);
  }, 90_000);

  afterAll(async () => {
    await t?.close();
    await redis?.stop();
    if (blobRoot) await rm(blobRoot, { recursive: true, force: true });
  });

  it('pages newest first with a cursor, every job once, counts per state', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await get(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.jobs.map((j) => j.jobId));
      expect(page.counts).toMatchObject({ delivered: 4, failed: 1 });
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([refusedId, ...[...ids].reverse()]);
  });

  it('filters by state, door and search; another tenant sees none of it', async () => {
    expect((await get('?state=failed')).jobs.map((j) => j.jobId)).toEqual([refusedId]);
    expect((await get('?door=http')).count).toBe(5);
    expect((await get('?door=watch')).count).toBe(0);
    const hit = await get(`?q=jobs-api-${mode}-2`);
    expect(hit.jobs.map((j) => j.jobId)).toEqual([ids[2]]);
    const theirs = await get('', B);
    expect(theirs.count).toBe(1);
    expect(theirs.counts).toMatchObject({ delivered: 1, failed: 0 });
    expect(theirs.jobs.some((j) => ids.includes(j.jobId) || j.jobId === refusedId)).toBe(false);
    expect((await fetch(`${t.url}/v1/jobs/${ids[0]}`, { headers: B })).status).toBe(404);
  });

  it("answers 404 to an id of any shape that is not one of the caller's jobs, never 500", async () => {
    for (const id of ['stalled-check', 'events', 'id', 'completed', 'meta', '00000000-0000-0000-0000-000000000000']) {
      for (const [method, suffix] of [
        ['GET', ''],
        ['POST', '/retry'],
        ['DELETE', ''],
      ] as const) {
        const res = await fetch(`${t.url}/v1/jobs/${id}${suffix}`, { method, headers: A });
        expect(res.status, `${method} ${id}${suffix}`).toBe(404);
        expect(await res.json()).toMatchObject({ reason: expect.any(Number), message: expect.any(String) });
      }
    }
  });

  it("shows a delivered job with Imagicle's id, and its waveform", async () => {
    const job = (await (await fetch(`${t.url}/v1/jobs/${ids[1]}`, { headers: A })).json()) as {
      state: string;
      parts: Array<{ id?: unknown }>;
    };
    expect(job.state).toBe('delivered');
    expect(job.parts[0]?.id).toBeTruthy();
    const png = await until(
      () => fetch(`${t.url}/v1/jobs/${ids[1]}/waveform/0.png`, { headers: A }),
      (r) => r.status === 200,
      10_000,
    );
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect((await png.arrayBuffer()).byteLength).toBeGreaterThan(100);
  });

  it('retries a refused job (delivered once Imagicle takes it) and deletes a job', async () => {
    const retried = await fetch(`${t.url}/v1/jobs/${refusedId}/retry`, { method: 'POST', headers: A });
    expect(retried.status).toBeLessThan(300);
    const state = await until(
      async () =>
        ((await (await fetch(`${t.url}/v1/jobs/${refusedId}`, { headers: A })).json()) as { state: string }).state,
      (s) => s === 'delivered',
    );
    expect(state).toBe('delivered');
    expect(t.emulator.store.list().filter((r) => r.metadata.pbxCallId === `refused-${mode}`)).toHaveLength(1);
    const removed = await fetch(`${t.url}/v1/jobs/${ids[0]}`, { method: 'DELETE', headers: A });
    expect(removed.status).toBeLessThan(300);
    expect((await fetch(`${t.url}/v1/jobs/${ids[0]}`, { headers: A })).status).toBe(404);
    expect((await get('')).counts).toMatchObject({ delivered: 4, failed: 0 });
  });
});
