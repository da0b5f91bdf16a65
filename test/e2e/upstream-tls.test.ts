/**
 * Upstream TLS and redirects: a private CA through IMAGICLE_CA_FILE, an
 * explicit (and loudly logged) IMAGICLE_TLS_INSECURE, and an upstream that
 * redirects: the gateway does not follow, answers 502, and the redirect's
 * target never sees a connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { countingListener, type CountingListener } from '../helpers/hostile.js';
import { makeCertificate, startFakeUpstream, type FakeUpstream, type TestCertificate } from '../helpers/upstream.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

let cert: TestCertificate;
let secure: FakeUpstream;
const started: TestGateway[] = [];

beforeAll(async () => {
  cert = await makeCertificate();
  secure = await startFakeUpstream({ tls: { key: cert.key, cert: cert.cert } });
});
afterAll(async () => {
  await Promise.all(started.map((g) => g.close()));
  await secure?.close();
  await cert?.cleanup();
});

/** DELIVERY=sync, one attempt: the upstream's answer (or failure) is the answer, not a spooled 202 or a retry. */
async function gateway(env: Record<string, string>): Promise<TestGateway> {
  const g = await startTestGateway({ DELIVERY: 'sync', RETRY_MAX_ATTEMPTS: '1', ...env });
  started.push(g);
  return g;
}

const post = async (g: TestGateway, path = RECORDINGS_PATH): Promise<Response> =>
  fetch(`${g.url}${path}`, { method: 'POST', body: await recordingForm(fixture('pcm16-mono.wav')) });

describe('TLS towards Imagicle', () => {
  it('a certificate from an unknown CA is refused: 502, nothing delivered', async () => {
    const g = await gateway({ IMAGICLE_URL: secure.url });
    const before = secure.requests.length;
    const res = await post(g);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ reason: 0, message: expect.stringMatching(/unreachable/) as unknown as string });
    expect(secure.requests.length).toBe(before);
  });

  it('IMAGICLE_CA_FILE trusts the private CA', async () => {
    const g = await gateway({ IMAGICLE_URL: secure.url, IMAGICLE_CA_FILE: cert.caFile });
    const res = await post(g);
    expect(res.status, await res.clone().text()).toBe(201);
    expect(secure.requests.at(-1)!.url).toBe(RECORDINGS_PATH);
  });

  it('IMAGICLE_TLS_INSECURE=true delivers without verification, and says so at startup', async () => {
    const g = await gateway({ IMAGICLE_URL: secure.url, IMAGICLE_TLS_INSECURE: 'true' });
    expect(g.logs.some((l) => l.includes('"level":40') && l.includes('NOT verified'))).toBe(true);
    const res = await post(g);
    expect(res.status).toBe(201);
  });
});

describe('redirects are not followed', () => {
  let target: CountingListener;
  let redirecting: FakeUpstream;
  beforeAll(async () => {
    target = await countingListener();
    redirecting = await startFakeUpstream({
      respond: (_req, res) => {
        res.writeHead(302, { location: `http://127.0.0.1:${target.port}${RECORDINGS_PATH}` }).end();
      },
    });
  });
  afterAll(async () => {
    await Promise.all([target?.close(), redirecting?.close()]);
  });

  it.each([RECORDINGS_PATH, '/v1/recordings'])(
    '%s: a 302 from Imagicle → 502, the Location is never contacted',
    async (path) => {
      const g =
        started.find((x) => x.gateway.upstreamUrl.startsWith(redirecting.url)) ??
        (await gateway({ IMAGICLE_URL: redirecting.url }));
      const before = redirecting.requests.length;
      const res = await post(g, path);
      const text = await res.text();
      expect(res.status, text).toBe(502);
      expect(res.headers.get('location')).toBeNull();
      expect(text).toMatch(/redirect \(302\).*does not follow/);
      expect(redirecting.requests.length).toBe(before + 1);
      expect(target.connections()).toBe(0);
      expect(await g.tempEntries()).toEqual([]);
    },
  );
});
