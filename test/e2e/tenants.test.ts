/**
 * Callers are tenants. Every spooled job and duplicate key belongs to the
 * caller that sent it (API key id, Basic user, plus a digest of a forwarded
 * Authorization); another owner gets 404 on every jobs-API verb, exactly as
 * for an unknown id; an operator key (GATEWAY_ADMIN_KEYS) sees all; a second
 * upload of the same recording by another owner goes to Imagicle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const KEY_A = 'tenant-a-key-0123456789';
const KEY_B = 'tenant-b-key-9876543210';
const ADMIN = 'operator-key-abcdef0123';
const FAST = { RETRY_MIN_DELAY_MS: '10', RETRY_MAX_DELAY_MS: '50', RETRY_MAX_TOTAL_MS: '2000', DEDUP_WINDOW: '1h' };
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

type Headers = Record<string, string>;
const as = (key: string): Headers => ({ 'x-api-key': key });

async function upload(url: string, headers: Headers, pbxCallId: string, route = RECORDINGS_PATH): Promise<Response> {
  const body = await recordingForm(fixture('pcm16-mono.wav'), { ...SAMPLE_METADATA, pbxCallId });
  return fetch(`${url}${route}`, { method: 'POST', headers, body });
}

/** Every jobs-API verb on one job id: the statuses and bodies, to compare with an unknown id's. */
async function verbs(url: string, id: string, headers: Headers): Promise<Array<{ status: number; body: unknown }>> {
  const out: Array<{ status: number; body: unknown }> = [];
  for (const [method, suffix] of [
    ['GET', ''],
    ['POST', '/retry'],
    ['DELETE', ''],
  ] as const) {
    const res = await fetch(`${url}/v1/jobs/${id}${suffix}`, { method, headers });
    out.push({ status: res.status, body: res.status === 204 ? undefined : await res.json() });
  }
  return out;
}

const listJobs = async (url: string, headers: Headers): Promise<Array<{ jobId: string }>> =>
  ((await (await fetch(`${url}/v1/jobs`, { headers })).json()) as { jobs: Array<{ jobId: string }> }).jobs;
const listIds = async (url: string, headers: Headers): Promise<string[]> =>
  (await listJobs(url, headers)).map((j) => j.jobId);
const stateOf = async (url: string, id: string, headers: Headers): Promise<string> =>
  ((await (await fetch(`${url}/v1/jobs/${id}`, { headers })).json()) as { state: string }).state;

const UNKNOWN = '00000000-0000-4000-8000-000000000000';
const notFoundFor = (id: string) => ({ status: 404, body: { reason: 0, message: `No job ${id}` } });

describe('two API keys and an operator key', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ ...FAST, GATEWAY_API_KEYS: `${KEY_A},${KEY_B}`, GATEWAY_ADMIN_KEYS: ADMIN });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('another owner: 404 on GET, retry and DELETE, as for an unknown id; owner and operator see it', async () => {
    // Imagicle answers 500: ambiguous, so the job is held (failed) in the spool for a decision.
    t.emulator.faults.add({ status: 500 });
    const held = await upload(t.url, as(KEY_A), 'held-1');
    expect(held.status).toBe(500);
    const id = held.headers.get('x-job-id')!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    const stored = t.emulator.store.list().length;
    expect(await verbs(t.url, id, as(KEY_B))).toEqual([notFoundFor(id), notFoundFor(id), notFoundFor(id)]);
    expect(await verbs(t.url, UNKNOWN, as(KEY_B))).toEqual(Array(3).fill(notFoundFor(UNKNOWN)));
    expect(await listIds(t.url, as(KEY_B))).not.toContain(id);
    // Nothing was resent for B, and the job is still there for A.
    expect(t.emulator.store.list().length).toBe(stored);
    expect(await listIds(t.url, as(KEY_A))).toContain(id);
    expect(await listIds(t.url, as(ADMIN))).toContain(id);
    expect((await fetch(`${t.url}/v1/jobs/${id}`, { headers: as(ADMIN) })).status).toBe(200);
    // Without credentials: 401 before anything else.
    expect((await fetch(`${t.url}/v1/jobs/${id}`)).status).toBe(401);
    expect((await fetch(`${t.url}/v1/jobs/${id}/retry`, { method: 'POST' })).status).toBe(401);

    // The owner retries it: delivered now.
    const retried = await fetch(`${t.url}/v1/jobs/${id}/retry`, { method: 'POST', headers: as(KEY_A) });
    expect(retried.status).toBe(202);
    for (let i = 0; i < 100 && (await stateOf(t.url, id, as(KEY_A))) !== 'delivered'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect(await stateOf(t.url, id, as(KEY_A))).toBe('delivered');
    // The operator may forget it; B still cannot.
    expect((await fetch(`${t.url}/v1/jobs/${id}`, { method: 'DELETE', headers: as(KEY_B) })).status).toBe(404);
    expect((await fetch(`${t.url}/v1/jobs/${id}`, { method: 'DELETE', headers: as(ADMIN) })).status).toBe(204);
  });

  it('duplicates are scoped to the owner: A twice is one upload, B with the same recording is a new one', async () => {
    const before = t.emulator.store.list().length;
    const first = await upload(t.url, as(KEY_A), 'dup-owner');
    expect(first.status).toBe(201);
    const again = await upload(t.url, as(KEY_A), 'dup-owner');
    expect(again.status).toBe(201);
    expect(again.headers.get('x-duplicate-of')).toBe(first.headers.get('x-job-id'));
    expect(t.emulator.store.list().length).toBe(before + 1);
    const other = await upload(t.url, as(KEY_B), 'dup-owner');
    expect(other.status).toBe(201);
    expect(other.headers.get('x-duplicate-of')).toBeNull();
    expect(t.emulator.store.list().length).toBe(before + 2);
  });

  it('the jobs list shows each owner only its own jobs, and their bytes only', async () => {
    const a = await listIds(t.url, as(KEY_A));
    const b = await listIds(t.url, as(KEY_B));
    const all = await listIds(t.url, as(ADMIN));
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(a.filter((id) => b.includes(id))).toEqual([]);
    expect(all.length).toBe(a.length + b.length);
  });
});

describe("forwarded credentials (the gateway holds none; Imagicle checks the caller's)", () => {
  let root: string;
  let imagicle: RunningEmulator;
  let t: TestGateway;
  const RIGHT = basic('api', 'right-Pa55word');
  const WRONG = basic('api', 'wrong-Pa55word');
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'gw-tenant-'));
    const storageDir = path.join(root, 'imagicle');
    imagicle = await startEmulator({ port: 0, storageDir, username: 'api', password: 'right-Pa55word' });
    t = await startTestGateway({ ...FAST, IMAGICLE_URL: imagicle.url });
  });
  afterAll(async () => {
    await t?.close();
    await imagicle?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("the same recording with wrong credentials gets Imagicle's 401, never a replay of the first 201", async () => {
    const first = await upload(t.url, { authorization: RIGHT }, 'forwarded-1');
    expect(first.status).toBe(201);
    const again = await upload(t.url, { authorization: RIGHT }, 'forwarded-1');
    expect(again.headers.get('x-duplicate-of')).toBe(first.headers.get('x-job-id'));
    const wrong = await upload(t.url, { authorization: WRONG }, 'forwarded-1');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('x-duplicate-of')).toBeNull();
    const none = await upload(t.url, {}, 'forwarded-1');
    expect(none.status).toBe(401);
    expect(imagicle.store.list()).toHaveLength(1);
  });

  it('a held job cannot be seen, retried or deleted by an anonymous caller or one with other credentials', async () => {
    imagicle.faults.add({ status: 500 });
    const held = await upload(t.url, { authorization: RIGHT }, 'forwarded-held');
    expect(held.status).toBe(500);
    const id = held.headers.get('x-job-id')!;
    const stored = imagicle.store.list().length;
    const requests = imagicle.stats.snapshot().requests;
    expect(await verbs(t.url, id, {})).toEqual([notFoundFor(id), notFoundFor(id), notFoundFor(id)]);
    expect(await verbs(t.url, id, { authorization: WRONG })).toEqual(Array(3).fill(notFoundFor(id)));
    expect(await listIds(t.url, {})).not.toContain(id);
    // Imagicle received nothing with the first caller's stored credentials.
    expect(imagicle.stats.snapshot().requests).toBe(requests);
    expect(imagicle.store.list().length).toBe(stored);
    expect(await listIds(t.url, { authorization: RIGHT })).toContain(id);
    const retried = await fetch(`${t.url}/v1/jobs/${id}/retry`, { method: 'POST', headers: { authorization: RIGHT } });
    expect(retried.status).toBe(202);
  });
});

describe('answers do not reveal IMAGICLE_URL', () => {
  it('502 and /readyz name no address; the log does', async () => {
    const t = await startTestGateway({ ...FAST, DELIVERY: 'sync', IMAGICLE_URL: 'http://127.0.0.1:9' });
    try {
      const res = await upload(t.url, {}, 'unreachable');
      expect(res.status).toBe(502);
      const text = await res.text();
      expect(text).not.toContain('127.0.0.1');
      expect(JSON.parse(text)).toEqual({ reason: 0, message: 'Imagicle is unreachable (ECONNREFUSED)' });
      const ready = await fetch(`${t.url}/readyz`);
      const readyText = await ready.text();
      expect(ready.status).toBe(503);
      expect(readyText).not.toContain('127.0.0.1');
      expect(t.logs.some((l) => l.includes('http://127.0.0.1:9'))).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('202 names no address', async () => {
    const unreachable = { IMAGICLE_URL: 'http://127.0.0.1:9', RETRY_MAX_TOTAL_MS: '100', RETRY_MAX_ATTEMPTS: '1' };
    const t = await startTestGateway({ ...FAST, ...unreachable });
    try {
      const res = await upload(t.url, {}, 'unreachable-202');
      expect(res.status).toBe(202);
      const text = await res.text();
      expect(text).not.toContain('127.0.0.1');
      const id = res.headers.get('x-job-id')!;
      expect(await (await fetch(`${t.url}/v1/jobs/${id}`)).text()).not.toContain('127.0.0.1');
    } finally {
      await t.close();
    }
  });
});
