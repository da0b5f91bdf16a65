/**
 * Inputs that used to answer 500 get a clear answer in Imagicle's shape, and
 * repeated failed logins from one address are throttled (429) without
 * touching callers that authenticate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAsBlob } from 'node:fs';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { sanitiseFilename } from '../../src/imagicle/multipart.js';

const KEY = 'bad-input-key-0123456789';

describe('no 500 for bad input', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ GATEWAY_API_KEYS: KEY, AUTH_FAIL_LIMIT: '3', AUTH_FAIL_WINDOW: '60s' });
  });
  afterAll(async () => {
    await t?.close();
  });
  const auth = { 'x-api-key': KEY };

  it('an emoji where the filename is shortened: cut on a character boundary, delivered (was 500)', async () => {
    const name = `${'a'.repeat(119)}😀b.wav`;
    expect(sanitiseFilename(name, 'wav')).toBe(`${'a'.repeat(119)}😀.wav`);
    for (const route of [RECORDINGS_PATH, '/v1/recordings']) {
      const body = await recordingForm(fixture('pcm16-mono.wav'), SAMPLE_METADATA, { filename: name });
      const res = await fetch(`${t.url}${route}`, { method: 'POST', headers: auth, body });
      expect(res.status).toBe(201);
    }
    const stored = t.emulator.store.list().at(-1) as unknown as { filename: string };
    expect(stored.filename).toBe(`${'a'.repeat(119)}😀.wav`);
  });

  it('a lone surrogate anywhere in a filename becomes U+FFFD', () => {
    expect(sanitiseFilename(`call\uD83D.wav`, 'wav')).toBe('call\uFFFD.wav');
    expect(sanitiseFilename(`\uDE00x.wav`, 'mp3')).toBe('\uFFFDx.mp3');
  });

  it('jsondata nested 20,000 levels deep: 400 reason 0 with a nesting limit (was 500)', async () => {
    const deep = `{"pbxInfo":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    const form = new FormData();
    form.append('jsondata', new Blob([deep], { type: 'application/json' }));
    form.append('attachment', await openAsBlob(fixture('pcm16-mono.wav')), 'a.wav');
    for (const route of [RECORDINGS_PATH, '/v1/recordings']) {
      const res = await fetch(`${t.url}${route}`, { method: 'POST', headers: auth, body: form });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ reason: 0, message: 'The jsondata part is nested more than 32 levels deep' });
    }
    // Strings that look like brackets do not count.
    const form2 = new FormData();
    const bracketsInAString = JSON.stringify({ ...SAMPLE_METADATA, notes: '['.repeat(100) });
    form2.append('jsondata', new Blob([bracketsInAString], { type: 'application/json' }));
    form2.append('attachment', await openAsBlob(fixture('pcm16-mono.wav')), 'a.wav');
    expect((await fetch(`${t.url}/v1/recordings`, { method: 'POST', headers: auth, body: form2 })).status).toBe(201);
    expect(await t.settledTempEntries()).toEqual([]);
  });

  // %C3%28: a well-formed escape of invalid UTF-8.
  const BAD_ESCAPES = ['%E0%A4%A', '%zz', '%', 'a%2', '%C3%28'];
  it.each(BAD_ESCAPES)('a bad percent-escape in a jobs URL (/v1/jobs/%s): 400 reason 0 (was 500)', async (bad) => {
    for (const [method, suffix] of [
      ['GET', ''],
      ['POST', '/retry'],
      ['DELETE', ''],
    ] as const) {
      const res = await fetch(`${t.url}/v1/jobs/${bad}${suffix}`, { method, headers: auth });
      expect(res.status, `${method} /v1/jobs/${bad}${suffix}`).toBe(400);
      const body = (await res.json()) as { reason: number; message: string };
      expect(body.reason).toBe(0);
      expect(body.message).toBe('The URL is malformed (a bad percent-escape)');
    }
  });

  it('failed logins from one address: 401 up to AUTH_FAIL_LIMIT, then 429; a right key passes', async () => {
    const wrong = { 'x-api-key': 'not-the-key-000000000000' };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${t.url}/v1/jobs`, { headers: wrong })).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const throttled = await fetch(`${t.url}/v1/jobs`, { headers: { authorization: 'Bearer also-wrong-0000000000' } });
    expect(throttled.status).toBe(429);
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await throttled.json()) as { reason: number; message: string };
    expect(body.reason).toBe(0);
    expect(body.message).toMatch(/^Too many failed logins from this address; retry in \d+ s$/);
    // An authenticated caller from the same address is not affected, nor is a request without credentials (401).
    expect((await fetch(`${t.url}/v1/jobs`, { headers: auth })).status).toBe(200);
    const form = await recordingForm(fixture('pcm16-mono.wav'));
    expect((await fetch(`${t.url}${RECORDINGS_PATH}`, { method: 'POST', headers: auth, body: form })).status).toBe(201);
    expect((await fetch(`${t.url}/v1/jobs`)).status).toBe(401);
  });
});

describe('failed logins behind a reverse proxy (TRUST_PROXY)', () => {
  const wrong = (client: string): Record<string, string> => ({
    'x-api-key': 'not-the-key-000000000000',
    'x-forwarded-for': client,
  });
  const statuses = async (url: string, client: string, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await fetch(`${url}/v1/jobs`, { headers: wrong(client) })).status);
    return out;
  };

  it('with the proxy trusted, each forwarded client has its own count', async () => {
    const t = await startTestGateway({ GATEWAY_API_KEYS: KEY, AUTH_FAIL_LIMIT: '2', TRUST_PROXY: 'loopback' });
    try {
      expect(await statuses(t.url, '203.0.113.7', 3)).toEqual([401, 401, 429]);
      // Another client behind the same proxy is not locked out by the first one's failures.
      expect(await statuses(t.url, '198.51.100.9', 2)).toEqual([401, 401]);
    } finally {
      await t.close();
    }
  });

  it('without it, X-Forwarded-For is not believed: a client cannot escape the count by claiming new addresses', async () => {
    const t = await startTestGateway({ GATEWAY_API_KEYS: KEY, AUTH_FAIL_LIMIT: '2' });
    try {
      expect(await statuses(t.url, '203.0.113.7', 2)).toEqual([401, 401]);
      expect(await statuses(t.url, '198.51.100.9', 1)).toEqual([429]);
    } finally {
      await t.close();
    }
  });
});
