/**
 * GET /openapi.json: a valid OpenAPI 3.1 document (checked by an OpenAPI
 * validator), and real answers of the gateway conform to the schemas it
 * documents for their path, method and status (checked with ajv).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

type Json = Record<string, unknown>;
const KEY = 'openapi-test-key-0123456789abcdef';
const AUTH = { 'x-api-key': KEY };
/** /metrics is an operator's endpoint: an admin key. */
const ADMIN = 'openapi-admin-key-0123456789abcdef';

let t: TestGateway;
let dir: string;
let doc: Json;
let ajv: Ajv2020;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'openapi-'));
  await writeFile(path.join(dir, 'junk.wav'), Buffer.alloc(4096, 7));
  t = await startTestGateway({ GATEWAY_API_KEYS: KEY, GATEWAY_ADMIN_KEYS: ADMIN, RETRY_MAX_ATTEMPTS: '1' });
  const res = await fetch(`${t.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Json;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'api', components: doc.components });
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Checks a real answer against the schema documented for it. */
async function conforms(res: Response, route: string, method: string, body?: unknown): Promise<void> {
  const operation = (doc.paths as Record<string, Record<string, Json>>)[route]?.[method];
  expect(operation, `${method} ${route} is documented`).toBeDefined();
  const responses = operation!.responses as Record<string, Json>;
  const response = responses[String(res.status)] ?? responses.default;
  expect(response, `${method} ${route} documents ${res.status}`).toBeDefined();
  const content = response!.content as Record<string, { schema: Json }> | undefined;
  const type = res.headers.get('content-type')?.split(';')[0] ?? '';
  if (!content) return;
  const media =
    content[type] ?? Object.entries(content).find(([k]) => k.endsWith('/*') && type.startsWith(k.slice(0, -1)))?.[1];
  expect(media, `${method} ${route} ${res.status} documents ${type}`).toBeDefined();
  if (type !== 'application/json') return;
  const schema = JSON.parse(JSON.stringify(media!.schema).replaceAll('"#/components/', '"api#/components/')) as Json;
  const validate = ajv.compile(schema);
  const value = body ?? (await res.json());
  expect(validate(value) ? [] : validate.errors, `${method} ${route} ${res.status}`).toEqual([]);
}

describe('the contract a client generator reads', () => {
  it('names a server, gives each operation a summary, declares 429 and 507, and types audio as binary', () => {
    expect(doc.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    const paths = doc.paths as Record<string, Record<string, Json>>;
    for (const [route, operations] of Object.entries(paths))
      for (const [method, operation] of Object.entries(operations))
        expect(operation.summary, `${method} ${route}`).toEqual(expect.any(String));
    for (const route of [RECORDINGS_PATH, '/v1/recordings', '/v1/transcode']) {
      const op = paths[route]!.post!;
      const responses = op.responses as Record<string, unknown>;
      expect(Object.keys(responses), route).toEqual(expect.arrayContaining(['401', '413', '429', '503', '507']));
      const schema = (op.requestBody as { content: Record<string, { schema: { properties: Record<string, Json> } }> })
        .content['multipart/form-data']!.schema;
      expect(schema.properties.attachment).toMatchObject({ type: 'string', format: 'binary' });
    }
  });
});

const form = (file = fixture('pcm16-mono.wav'), pbxCallId = 'openapi') =>
  recordingForm(file, { ...SAMPLE_METADATA, pbxCallId });

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document covering every endpoint, the forms and the security schemes', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    const paths = Object.keys(doc.paths as Json);
    expect(paths).toEqual(
      expect.arrayContaining([
        RECORDINGS_PATH,
        '/v1/recordings',
        '/v1/transcode',
        '/v1/jobs',
        '/v1/jobs/{id}',
        '/v1/jobs/{id}/retry',
        '/metrics',
        '/healthz',
        '/readyz',
      ]),
    );
    const schemes = (doc.components as { securitySchemes: Json }).securitySchemes;
    expect(Object.keys(schemes).sort()).toEqual(['apiKey', 'basic', 'bearer']);
    // The form's options come from the zod schema that validates them.
    const upload = (doc.paths as Record<string, Record<string, Json>>)['/v1/recordings']!.post!;
    const formSchema = (
      (upload.requestBody as Json).content as Record<string, { schema: { properties: Record<string, Json> } }>
    )['multipart/form-data']!.schema;
    expect(Object.keys(formSchema.properties)).toEqual(
      expect.arrayContaining([
        'jsondata',
        'attachment',
        'remoteAttachment',
        'channelOrder',
        'sourceProfile',
        'channels',
        'localOffsetMs',
        'remoteOffsetMs',
      ]),
    );
    expect(formSchema.properties.channelOrder).toMatchObject({ enum: ['local-left', 'local-right'] });
    const metadata = (
      doc.components as { schemas: Record<string, { required: string[]; properties: Record<string, Json> }> }
    ).schemas.RecordingMetadata!;
    expect(metadata.required).toEqual(expect.arrayContaining(['startDateTime', 'direction', 'localParty']));
    expect(metadata.required).not.toContain('duration');
    const error = (doc.components as { schemas: Record<string, Json> }).schemas.ImagicleError;
    expect(JSON.stringify(error)).toContain('InvalidRecordingAudioFile');
  });

  it('documents what the gateway really answers', async () => {
    await conforms(await fetch(`${t.url}/healthz`), '/healthz', 'get');
    await conforms(await fetch(`${t.url}/readyz`), '/readyz', 'get');
    await conforms(await fetch(`${t.url}/v1/jobs`), '/v1/jobs', 'get'); // 401
    const report = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: await form(), headers: AUTH });
    expect(report.status).toBe(201);
    const reportBody = (await report.json()) as { jobId: string };
    await conforms(report, '/v1/recordings', 'post', reportBody);
    const dropIn = await fetch(`${t.url}${RECORDINGS_PATH}`, {
      method: 'POST',
      body: await form(fixture('opus-stereo.opus'), 'oa-2'),
      headers: AUTH,
    });
    await conforms(dropIn, RECORDINGS_PATH, 'post');
    const junk = await fetch(`${t.url}/v1/recordings`, {
      method: 'POST',
      body: await form(path.join(dir, 'junk.wav'), 'oa-3'),
      headers: AUTH,
    });
    expect(junk.status).toBe(400);
    await conforms(junk, '/v1/recordings', 'post');
    const badMeta = await fetch(`${t.url}/v1/recordings`, {
      method: 'POST',
      body: await recordingForm(fixture('pcm16-mono.wav'), { direction: 7 }),
      headers: AUTH,
    });
    expect(badMeta.status).toBe(400);
    await conforms(badMeta, '/v1/recordings', 'post');
    const later = await fetch(`${t.url}/v1/recordings`, {
      method: 'POST',
      body: await form(fixture('pcm16-mono.wav'), 'oa-4'),
      headers: { ...AUTH, prefer: 'respond-async' },
    });
    expect(later.status).toBe(202);
    await conforms(later, '/v1/recordings', 'post');
    const audio = await fetch(`${t.url}/v1/transcode`, {
      method: 'POST',
      body: await form(fixture('flac.flac')),
      headers: AUTH,
    });
    expect(audio.status).toBe(200);
    await conforms(audio, '/v1/transcode', 'post');
    await t.emulator.faults.add({ status: 500, body: { reason: 0, message: 'server error' } });
    const held = await fetch(`${t.url}/v1/recordings`, {
      method: 'POST',
      body: await form(fixture('pcm16-mono.wav'), 'oa-5'),
      headers: AUTH,
    });
    await conforms(held, '/v1/recordings', 'post');
    const heldId = held.headers.get('x-job-id')!;
    await conforms(await fetch(`${t.url}/v1/jobs/${reportBody.jobId}`, { headers: AUTH }), '/v1/jobs/{id}', 'get');
    await conforms(await fetch(`${t.url}/v1/jobs/${heldId}`, { headers: AUTH }), '/v1/jobs/{id}', 'get');
    await conforms(await fetch(`${t.url}/v1/jobs?state=failed`, { headers: AUTH }), '/v1/jobs', 'get');
    await conforms(await fetch(`${t.url}/v1/jobs?state=nope`, { headers: AUTH }), '/v1/jobs', 'get');
    await conforms(
      await fetch(`${t.url}/v1/jobs/${heldId}/retry`, { method: 'POST', headers: AUTH }),
      '/v1/jobs/{id}/retry',
      'post',
    );
    await conforms(
      await fetch(`${t.url}/v1/jobs/${reportBody.jobId}/retry`, { method: 'POST', headers: AUTH }),
      '/v1/jobs/{id}/retry',
      'post',
    );
    const picture = await fetch(`${t.url}/v1/jobs/${reportBody.jobId}/waveform/0.png`, { headers: AUTH });
    expect(picture.status).toBe(200);
    await conforms(picture, '/v1/jobs/{id}/waveform/{channel}.png', 'get');
    await conforms(
      await fetch(`${t.url}/v1/jobs/${reportBody.jobId}/waveform/5.png`, { headers: AUTH }),
      '/v1/jobs/{id}/waveform/{channel}.png',
      'get',
    );
    await conforms(
      await fetch(`${t.url}/v1/jobs/00000000-0000-0000-0000-000000000000`, { headers: AUTH }),
      '/v1/jobs/{id}',
      'get',
    );
    await conforms(await fetch(`${t.url}/metrics`, { headers: { 'x-api-key': ADMIN } }), '/metrics', 'get');
    await conforms(await fetch(`${t.url}/metrics`, { headers: AUTH }), '/metrics', 'get');
    const rates = await fetch(`${t.url}/metrics/rates`, { headers: { 'x-api-key': ADMIN } });
    await conforms(rates.clone(), '/metrics/rates', 'get');
    const hour = (await rates.json()) as { series: Record<string, number[]> };
    for (const series of ['uploads', 'deliveries', 'failures']) expect(hour.series[series]).toHaveLength(12);
    expect(hour.series.uploads!.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    await conforms(await fetch(`${t.url}/metrics/rates`, { headers: AUTH }), '/metrics/rates', 'get');
    const status = await fetch(`${t.url}/metrics/status`, { headers: { 'x-api-key': ADMIN } });
    await conforms(status.clone(), '/metrics/status', 'get');
    expect(((await status.json()) as { disk: Record<string, unknown> }).disk).toHaveProperty('tmp.freeBytes');
    await conforms(await fetch(`${t.url}/metrics/status`, { headers: AUTH }), '/metrics/status', 'get'); // 403
    const ready = (await (await fetch(`${t.url}/readyz`)).json()) as Record<string, unknown>;
    expect(ready).not.toHaveProperty('disk');
  });
});
