/**
 * Between binding its port and being ready (ffmpeg checked, the spool loaded), the gateway answers /healthz and
 * nothing else: a restart over a large spool is "starting", never a refused connection or a half-built app.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startingHandler } from '../../src/http/starting.js';

let server: http.Server;
let base: string;
beforeAll(async () => {
  server = http.createServer(startingHandler(Date.now() - 2_000));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('the starting gateway', () => {
  it('is alive: /healthz 200, says it is starting', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', starting: true, uptimeSeconds: 2 });
  });

  it('is not ready: /readyz 503 with Retry-After', async () => {
    const res = await fetch(`${base}/readyz?verbose=1`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({ status: 'starting' });
  });

  it('takes no upload yet: 503 in Imagicle shape, the body left unread', async () => {
    const res = await fetch(`${base}/fw/Apps/Recorder/WebAPI/Recordings`, {
      method: 'POST',
      body: new Uint8Array(64 * 1024),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    const body = (await res.json()) as { reason: number; message: string };
    expect(body.reason).toBe(0);
    expect(body.message).toMatch(/starting/);
  });
});
