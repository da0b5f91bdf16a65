/**
 * Access control: with Imagicle credentials in the gateway, callers must
 * authenticate (API key or Basic); 401 in Imagicle's shape otherwise; health
 * endpoints stay open; secrets appear in no log line, no error body, and the
 * caller's gateway credential is not forwarded to Imagicle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/upstream.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const IMAGICLE_PASSWORD = 'imagicle-Service-Pa55';
const KEY1 = 'gk_live_0123456789abcdef';
const KEY2 = 'gk_live_fedcba9876543210';
const ALICE_PASSWORD = 'alice-Pa55word';
const BOB_PASSWORD = 'bob-hashed-Pa55word';
const BOB_SHA = createHash('sha256').update(BOB_PASSWORD).digest('hex');
const WRONG = 'gk_live_wrong_key_00000';
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const SECRETS = [
  IMAGICLE_PASSWORD,
  KEY1,
  KEY2,
  ALICE_PASSWORD,
  BOB_PASSWORD,
  WRONG,
  basic('alice', ALICE_PASSWORD).slice(6),
  basic('svc', IMAGICLE_PASSWORD).slice(6),
];

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({
    IMAGICLE_USERNAME: 'svc',
    IMAGICLE_PASSWORD,
    GATEWAY_API_KEYS: `${KEY1}, ${KEY2}`,
    GATEWAY_BASIC_USERS: `alice:${ALICE_PASSWORD},bob:sha256:${BOB_SHA}`,
  });
});
afterAll(async () => {
  await t?.close();
});

const post = async (headers: Record<string, string>, path = RECORDINGS_PATH): Promise<Response> =>
  fetch(`${t.url}${path}`, { method: 'POST', headers, body: await recordingForm(fixture('pcm16-mono.wav')) });

describe('callers must authenticate', () => {
  it('no credentials → 401 with both challenges, in Imagicle shape, nothing forwarded', async () => {
    const requests = t.emulator.stats.snapshot().requests;
    const res = await post({});
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain('Bearer realm="imagicle-gateway"');
    expect(challenge).toContain('Basic realm="imagicle-gateway"');
    expect(await res.json()).toEqual({
      reason: 0,
      message: expect.stringMatching(/Authentication required/) as unknown as string,
    });
    expect(t.emulator.stats.snapshot().requests).toBe(requests);
  });

  const wrong: Array<[string, Record<string, string>]> = [
    ['a wrong bearer key', { authorization: `Bearer ${WRONG}` }],
    ['a wrong X-Api-Key', { 'x-api-key': WRONG }],
    ['a wrong X-Api-Key beside a right bearer', { 'x-api-key': WRONG, authorization: `Bearer ${KEY1}` }],
    ['Basic with a wrong password', { authorization: basic('alice', `${ALICE_PASSWORD}x`) }],
    ['Basic with an unknown user', { authorization: basic('mallory', ALICE_PASSWORD) }],
    ['Basic with the stored hash as the password', { authorization: basic('bob', BOB_SHA) }],
    ['Basic without a colon', { authorization: `Basic ${Buffer.from('alice').toString('base64')}` }],
    ['an API key sent as Basic', { authorization: basic(KEY1, '') }],
    ['another scheme', { authorization: `Digest username="alice"` }],
    ['the Imagicle credentials themselves', { authorization: basic('svc', IMAGICLE_PASSWORD) }],
  ];
  it.each(wrong)('%s → 401', async (_name, headers) => {
    const requests = t.emulator.stats.snapshot().requests;
    const res = await post(headers);
    const text = await res.text();
    expect(res.status).toBe(401);
    expect(JSON.parse(text)).toEqual({ reason: 0, message: 'The credentials are not valid for this gateway' });
    for (const secret of SECRETS) expect(text).not.toContain(secret);
    expect(t.emulator.stats.snapshot().requests).toBe(requests);
  });

  const right: Array<[string, Record<string, string>]> = [
    ['Authorization: Bearer (first key)', { authorization: `Bearer ${KEY1}` }],
    ['X-Api-Key (second key)', { 'x-api-key': KEY2 }],
    ['Basic, plain password', { authorization: basic('alice', ALICE_PASSWORD) }],
    ['Basic, user:sha256:<hex> entry', { authorization: basic('bob', BOB_PASSWORD) }],
  ];
  it.each(right)('%s → 201', async (_name, headers) => {
    const res = await post(headers);
    expect(res.status, await res.clone().text()).toBe(201);
  });

  it('health endpoints stay open', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
  });

  it('covers every upload route, the jobs API and any future /v1 route', async () => {
    for (const path of ['/v1/recordings', '/v1/transcode', '/v1/jobs', '/v1/not-yet-written']) {
      const res = await post({}, path);
      expect(res.status, path).toBe(401);
      expect((await fetch(`${t.url}${path}`)).status, `GET ${path}`).toBe(401);
    }
    const authed = await fetch(`${t.url}/v1/not-yet-written`, { headers: { 'x-api-key': KEY1 } });
    expect(authed.status).toBe(404);
  });

  it('no secret in any log line', () => {
    const logs = t.logs.join('');
    expect(logs).toContain('"status":401'); // the refusals were logged...
    for (const secret of SECRETS) expect(logs).not.toContain(secret); // ...without what was presented
    expect(t.logs.some((l) => l.includes('"code":"UNAUTHORIZED"'))).toBe(true);
  });
});

describe('what reaches Imagicle', () => {
  let upstream: FakeUpstream;
  let keysOnly: TestGateway;
  let withCreds: TestGateway;
  let calls = 0;
  beforeAll(async () => {
    upstream = await startFakeUpstream();
    [keysOnly, withCreds] = await Promise.all([
      startTestGateway({ IMAGICLE_URL: upstream.url, GATEWAY_API_KEYS: KEY1 }),
      startTestGateway({
        IMAGICLE_URL: upstream.url,
        GATEWAY_API_KEYS: KEY1,
        IMAGICLE_USERNAME: 'svc',
        IMAGICLE_PASSWORD,
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([keysOnly?.close(), withCreds?.close()]);
    await upstream?.close();
  });
  const send = async (g: TestGateway, headers: Record<string, string>): Promise<string | undefined> => {
    // A distinct call each time, so that the gateway's duplicate detection does not answer from memory.
    const metadata = { ...SAMPLE_METADATA, pbxCallId: `access-${++calls}` };
    const before = upstream.requests.length;
    const res = await fetch(`${g.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      headers,
      body: await recordingForm(fixture('pcm16-mono.wav'), metadata),
    });
    expect(res.status).toBe(201);
    expect(upstream.requests.length).toBe(before + 1);
    return upstream.requests.at(-1)!.headers.authorization;
  };

  it('the gateway credential (Authorization: Bearer) is not forwarded', async () => {
    expect(await send(keysOnly, { authorization: `Bearer ${KEY1}` })).toBeUndefined();
  });

  it('with X-Api-Key, the caller’s own Authorization goes to Imagicle (no credentials in the gateway)', async () => {
    expect(await send(keysOnly, { 'x-api-key': KEY1, authorization: 'Basic Y2FsbGVyOmltYWdpY2xl' })).toBe(
      'Basic Y2FsbGVyOmltYWdpY2xl',
    );
  });

  it('with credentials in the gateway, Imagicle sees those and never the caller’s', async () => {
    expect(await send(withCreds, { 'x-api-key': KEY1, authorization: 'Basic Y2FsbGVyOmltYWdpY2xl' })).toBe(
      basic('svc', IMAGICLE_PASSWORD),
    );
    for (const line of withCreds.logs) expect(line).not.toContain(IMAGICLE_PASSWORD);
  });
});

describe('startup', () => {
  it('refuses to start with Imagicle credentials and no caller authentication, without printing the password', async () => {
    const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
    const result = await promisify(execFile)(process.execPath, ['--import', 'tsx', main, 'serve'], {
      env: {
        PATH: process.env.PATH,
        IMAGICLE_URL: 'https://ucx.example.com',
        IMAGICLE_USERNAME: 'svc',
        IMAGICLE_PASSWORD,
        PORT: '0',
      },
      timeout: 20_000,
    }).then(
      () => ({ code: 0, stderr: '', stdout: '' }),
      (error: { code: number; stderr: string; stdout: string }) => error,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/GATEWAY_API_KEYS or GATEWAY_BASIC_USERS: required/);
    expect(result.stderr).toMatch(/ALLOW_ANONYMOUS=true/);
    expect(result.stderr + result.stdout).not.toContain(IMAGICLE_PASSWORD);
  });
});
