/**
 * The emulator's read endpoints (imagicle-api.md, "Read endpoints") over real HTTP on port 0.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { UpstreamClient } from '../../src/imagicle/client.js';
import { plainWavHeader } from '../../src/media/wav-write.js';

const USER = { username: 'reader', password: 's3cret' };
const AUTH = `Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString('base64')}`;
const LIST = '/fw/Apps/Recorder/WebAPI/Recordings';
const WAV_BYTES = 16_000; // 1 s of 8 kHz 16-bit mono

let work: string;
let emulator: RunningEmulator;
const ids: Record<string, string> = {};

/** Four calls: a (09:00, out, 376→+39 02…), b (10:00, in), c (10:00 written +01:00 as 11:00, out), d (12:00, out, other local). */
const calls: Record<string, Record<string, unknown>> = {
  a: { startDateTime: '2026-11-30T09:00:00.0000000Z', direction: 2, local: '376', remote: '+390212345', pbx: 'pa' },
  b: { startDateTime: '2026-11-30T10:00:00.0000000Z', direction: 1, local: '376', remote: '555', pbx: 'pb' },
  c: { startDateTime: '2026-11-30T11:00:00.500+01:00', direction: 2, local: '376', remote: '+39333', pbx: 'pc' },
  d: { startDateTime: '2026-11-30T12:00:00Z', direction: 2, local: '225', remote: '777', pbx: 'pd' },
};

async function get(pathAndQuery: string, auth: string | null = AUTH) {
  const res = await fetch(`${emulator.url}${pathAndQuery}`, { headers: auth ? { authorization: auth } : {} });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function listIds(query: string): Promise<string[]> {
  const { status, body } = await get(`${LIST}?${query}`);
  expect(status).toBe(200);
  const byId = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
  return (body.recordings as { id: string }[]).map((r) => byId[r.id] ?? r.id);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'emulator-reads-'));
  const wav = path.join(work, 'call.wav');
  const header = plainWavHeader({ formatTag: 1, channels: 1, sampleRate: 8000, bitsPerSample: 16 }, WAV_BYTES);
  await writeFile(wav, Buffer.concat([header, Buffer.alloc(WAV_BYTES)]));
  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'imagicle'), ...USER });
  const client = new UpstreamClient({ baseUrl: emulator.url, credentials: USER, timeoutMs: 5000 });
  for (const [name, c] of Object.entries(calls)) {
    const res = await client.postRecording({
      metadata: {
        startDateTime: c.startDateTime,
        duration: 'PT1S',
        direction: c.direction,
        localParty: { phoneNumber: c.local, username: `user${String(c.local)}` },
        remoteParty: { phoneNumber: c.remote },
        pbxCallId: c.pbx,
        notes: `call ${name}`,
        preserved: name === 'a',
      },
      audioPath: wav,
      audioBytes: WAV_BYTES + 44,
      contentType: 'audio/wave',
      filename: `${name}.wav`,
    });
    expect(res.status).toBe(201);
    ids[name] = res.json as string;
  }
  await client.close();
});

afterAll(async () => {
  await emulator?.close();
  await rm(work, { recursive: true, force: true });
});

describe('GET …/Recordings (list)', () => {
  it('lists every recording, most recent first, with totalCount and the documented fields', async () => {
    const { status, body } = await get(LIST);
    expect(status).toBe(200);
    expect(body.totalCount).toBe(4);
    expect(await listIds('')).toEqual(['d', 'c', 'b', 'a']); // c is 10:00:00.5Z (sent as 11:00:00.500+01:00)
    expect((body.recordings as unknown[])[3]).toEqual({
      id: ids.a,
      referenceNumber: '1',
      startTime: '2026-11-30T09:00:00Z',
      duration: 'PT1S',
      direction: 2,
      localPartyNumber: '376',
      remotePartyNumber: '+390212345',
      ownerUsername: 'user376',
    });
  });

  it('filters startTime by instant, whatever its spelling: bare, equals, before, after, between', async () => {
    expect(await listIds('startTime=2026-11-30T09:00:00Z')).toEqual(['a']);
    expect(await listIds(`startTime=${encodeURIComponent('equals:2026-11-30T11:00:00.5000000+01:00')}`)).toEqual(['c']);
    expect(await listIds(`startTime=${encodeURIComponent('equals:2026-11-30T10:00:00.5Z')}`)).toEqual(['c']);
    expect(await listIds('startTime=before:2026-11-30T10:00:00Z')).toEqual(['a']);
    expect(await listIds('startTime=after:2026-11-30T10:00:00Z')).toEqual(['d', 'c']);
    expect(await listIds('startTime=between:2026-11-30T09:00:00Z,2026-11-30T10:00:00.5Z')).toEqual(['c', 'b', 'a']);
    expect(await listIds('endTime=equals:2026-11-30T09:00:01Z')).toEqual(['a']);
  });

  it('filters by local and remote number (equals, contains), owner and direction', async () => {
    expect(await listIds('localPartyNumber=225')).toEqual(['d']);
    expect(await listIds(`remotePartyNumber=${encodeURIComponent('contains:+39')}`)).toEqual(['c', 'a']);
    expect(await listIds('remotePartyNumber=555')).toEqual(['b']);
    expect(await listIds('ownerUsername=user376&direction=2')).toEqual(['c', 'a']);
    expect(await listIds('direction=1&localPartyNumber=376')).toEqual(['b']);
  });

  it('pages with page (0-based) and pageSize; totalCount counts every match', async () => {
    const pages = [];
    for (const page of [0, 1, 2]) {
      const { body } = await get(`${LIST}?pageSize=3&page=${page}`);
      expect(body.totalCount).toBe(4);
      pages.push(await listIds(`pageSize=3&page=${page}`));
    }
    expect(pages).toEqual([['d', 'c', 'b'], ['a'], []]);
  });

  it('answers 400 in Imagicle’s shape for a filter it cannot read', async () => {
    for (const query of ['startTime=after:yesterday', 'startTime=between:2026-11-30T09:00:00Z', 'pageSize=0']) {
      const { status, body } = await get(`${LIST}?${query}`);
      expect(status).toBe(400);
      expect(body).toMatchObject({ reason: 0, message: expect.any(String) });
    }
  });
});

describe('GET …/Recordings/{id} (detail)', () => {
  it('gives the documented detail fields, times in UTC', async () => {
    const { status, body } = await get(`${LIST}/${ids.c}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      id: ids.c,
      referenceNumber: '3',
      pbxCallId: 'pc',
      startTime: '2026-11-30T10:00:00.5Z',
      duration: 'PT1S',
      direction: 2,
      localPartyNumber: '376',
      remotePartyNumber: '+39333',
      owner: {
        username: 'user376',
        firstName: null,
        lastName: null,
        phoneNumber: '376',
        group: null,
        department: null,
      },
      preservingUser: null,
      note: 'call c',
      size: WAV_BYTES + 44,
    });
    expect((await get(`${LIST}/${ids.a}`)).body.preservingUser).toBe('user376');
  });

  it('answers 404 for an unknown id', async () => {
    expect((await get(`${LIST}/no-such-id`)).status).toBe(404);
  });
});

describe('rights', () => {
  it('needs the uploads’ credentials', async () => {
    expect((await get(LIST, null)).status).toBe(401);
    expect((await get(`${LIST}/${ids.a}`, 'Basic d3Jvbmc6d3Jvbmc=')).status).toBe(401);
  });

  it.each([401, 403, 404, 405] as const)('can be turned off with %s (PUT /emulator/reads)', async (status) => {
    const put = await fetch(`${emulator.url}/emulator/reads`, {
      method: 'PUT',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ refuse: status }),
    });
    expect(await put.json()).toEqual({ refuse: status });
    try {
      expect((await get(LIST)).status).toBe(status);
      expect((await get(`${LIST}/${ids.a}`)).status).toBe(status);
    } finally {
      emulator.reads.refuse(undefined);
    }
    expect((await get(LIST)).status).toBe(200);
  });
});
