/** GET /v1/jobs/{id}/audio/output|input: the owner's only, with range requests, while the job holds the audio. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const OWNER = 'audio-owner-key-0123456789abcdef';
const OTHER = 'audio-other-key-0123456789abcdef';
let t: TestGateway;

beforeAll(async () => {
  t = await startTestGateway({ GATEWAY_API_KEYS: `${OWNER},${OTHER}`, RETRY_MAX_ATTEMPTS: '1' });
});
afterAll(async () => {
  await t?.close();
});

const get = (path: string, key: string, headers: Record<string, string> = {}) =>
  fetch(`${t.url}${path}`, { headers: { 'x-api-key': key, ...headers } });

describe('the audio of a job', () => {
  it('serves a held job its output and input with ranges, to its owner only; says when the audio is gone', async () => {
    t.emulator.faults.add({ status: 500, body: { reason: 0, message: 'boom' } });
    const held = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await recordingForm(fixture('opus-stereo.opus'), { ...SAMPLE_METADATA, pbxCallId: 'audio-1' }),
      headers: { 'x-api-key': OWNER },
    });
    expect(held.status).toBe(500);
    const jobId = held.headers.get('x-job-id')!;
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);

    const whole = await get(`/v1/jobs/${jobId}/audio/output?part=1`, OWNER);
    expect(whole.status, await whole.clone().text()).toBe(200);
    expect(whole.headers.get('content-type')).toMatch(/^audio\/wave/);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const bytes = Buffer.from(await whole.arrayBuffer());
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('RIFF');

    const range = await get(`/v1/jobs/${jobId}/audio/output?part=1`, OWNER, { range: 'bytes=8-15' });
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe(`bytes 8-15/${bytes.length}`);
    expect(Buffer.from(await range.arrayBuffer()).toString('latin1')).toBe('WAVEfmt ');

    // The upload itself is kept only until it is converted: the API says so.
    const input = await get(`/v1/jobs/${jobId}/audio/input`, OWNER);
    expect(input.status).toBe(404);
    expect(((await input.json()) as { message: string }).message).toMatch(
      /no longer kept: the gateway keeps it only until it is converted/,
    );

    // Another caller: 404, as for an id that does not exist.
    expect((await get(`/v1/jobs/${jobId}/audio/output`, OTHER)).status).toBe(404);
    expect((await get(`/v1/jobs/${jobId}/audio/output?part=7`, OWNER)).status).toBe(404);

    // Retried and delivered: the gateway no longer holds the audio, and says so.
    expect(
      (await fetch(`${t.url}/v1/jobs/${jobId}/retry`, { method: 'POST', headers: { 'x-api-key': OWNER } })).status,
    ).toBe(202);
    await expect
      .poll(async () => ((await (await get(`/v1/jobs/${jobId}`, OWNER)).json()) as { state: string }).state, {
        timeout: 15_000,
      })
      .toBe('delivered');
    const gone = await get(`/v1/jobs/${jobId}/audio/output?part=1`, OWNER);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { message: string }).message).toMatch(/delivered to Imagicle and its audio deleted/);
  });
});
