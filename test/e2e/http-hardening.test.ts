/**
 * The HTTP side's red-team findings (docs/security.md): /metrics behind the failed-login throttle and for
 * operators only (admin keys, METRICS_PUBLIC, or its own listener on localhost), security headers on every answer,
 * TRUST_PROXY=true called out, failed logins logged with the client's address, and two different calls with the
 * same audio and no pbxCallId delivered as two recordings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const KEY = 'tenant-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef0';
let t: TestGateway;

beforeAll(async () => {
  t = await startTestGateway({
    GATEWAY_API_KEYS: KEY,
    GATEWAY_ADMIN_KEYS: ADMIN,
    AUTH_FAIL_LIMIT: '10',
    DEDUP_WINDOW: '1h',
    METRICS_PORT: '0',
    TRUST_PROXY: 'true',
  });
});
afterAll(async () => {
  await t?.close();
});

describe('/metrics', () => {
  it('#9 wrong keys and wrong Basic passwords at /metrics are throttled like any failed login', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${t.url}/metrics`, {
        headers: { authorization: `Bearer wrong-key-${i}-0123456789`, 'x-forwarded-for': '198.51.100.9' },
      });
      statuses.push(res.status);
    }
    for (let i = 0; i < 30; i++) {
      const basic = Buffer.from(`ops:wrong-${i}`).toString('base64');
      const res = await fetch(`${t.url}/metrics`, {
        headers: { authorization: `Basic ${basic}`, 'x-forwarded-for': '198.51.100.10' },
      });
      statuses.push(res.status);
    }
    const count = (from: number, to: number, status: number): number =>
      statuses.slice(from, to).filter((s) => s === status).length;
    console.log(
      `#9: 30 wrong keys: ${count(0, 30, 401)}×401 ${count(0, 30, 429)}×429; ` +
        `30 wrong Basic passwords: ${count(30, 60, 401)}×401 ${count(30, 60, 429)}×429`,
    );
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(10, 30).every((s) => s === 429)).toBe(true);
    expect(statuses.slice(40).every((s) => s === 429)).toBe(true);
  });

  it('#10 a tenant key gets 403; an admin key and the localhost METRICS_PORT listener get the numbers', async () => {
    const tenant = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(tenant.status).toBe(403);
    expect(((await tenant.json()) as { reason: number }).reason).toBe(0);
    const admin = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(admin.status).toBe(200);
    expect(await admin.text()).toMatch(/imagicle_gateway_/);
    const own = t.gateway.metricsServer!;
    expect(own.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const open = await fetch(`${own.url}/metrics`);
    expect(open.status).toBe(200);
    expect(await open.text()).toMatch(/imagicle_gateway_/);
    expect((await fetch(`${own.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${own.url}/v1/jobs`)).status).toBe(404);
  });
});

describe('headers and proxies', () => {
  it('#12 /ui/, /v1 and /openapi.json carry a strict CSP, nosniff, no-referrer and no framing', async () => {
    for (const [route, headers] of [
      ['/ui/', {}],
      ['/openapi.json', {}],
      ['/v1/jobs', { authorization: `Bearer ${KEY}` }],
    ] as const) {
      const res = await fetch(`${t.url}${route}`, { headers });
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, route).toMatch(/default-src 'self'/);
      expect(csp, route).toMatch(/script-src 'self'(;|$)/);
      expect(csp, route).toMatch(/frame-ancestors 'none'/);
      expect(csp, route).not.toMatch(/unsafe-inline/);
      expect(res.headers.get('x-content-type-options'), route).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), route).toBe('no-referrer');
      expect(res.headers.get('x-frame-options'), route).toBe('DENY');
    }
  });

  it('#13 TRUST_PROXY=true is warned about at startup; a failed login is logged with the client address', async () => {
    expect(t.logs.join('')).toMatch(/TRUST_PROXY=true/);
    await fetch(`${t.url}/v1/jobs`, {
      headers: { authorization: 'Bearer not-a-key-0123456789', 'x-forwarded-for': '203.0.113.77' },
    });
    const line = t.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.code === 'UNAUTHORIZED' && l.client === '203.0.113.77');
    expect(line).toBeDefined();
  });
});

describe('duplicates without a pbxCallId', () => {
  it('#11 two different calls with byte-identical audio and no pbxCallId are two deliveries', async () => {
    await t.emulator.store.clear();
    const { pbxCallId: _none, ...base } = SAMPLE_METADATA;
    const ids: unknown[] = [];
    for (const start of ['2026-11-29T10:15:00Z', '2026-11-29T11:40:00Z']) {
      const res = await fetch(`${t.url}${RECORDINGS_PATH}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}` },
        body: await recordingForm(fixture('pcm16-mono.wav'), { ...base, startDateTime: start }),
      });
      expect(res.status).toBe(201);
      ids.push(await res.json());
    }
    expect(ids[0]).not.toEqual(ids[1]);
    expect(t.emulator.store.list()).toHaveLength(2);
    // The same call sent twice is still one delivery.
    const again = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: await recordingForm(fixture('pcm16-mono.wav'), { ...base, startDateTime: '2026-11-29T11:40:00Z' }),
    });
    expect(await again.json()).toEqual(ids[1]);
    expect(t.emulator.store.list()).toHaveLength(2);
  });
});
