/**
 * Output and disk are bounded before the work starts: the 1 Hz float WAV
 * (172 KB declaring 12 h, 688 MB once converted) and two 64 KB legs with
 * remoteOffsetMs=3600000 (115 MB) are refused before any decoding, against
 * MAX_EXPANSION and a small SPOOL_MAX_BYTES; the spool never holds more than
 * the upload. Reservations are atomic (test/unit/disk.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openAsBlob } from 'node:fs';
import { oneHertzFloatWav, pcmLeg, watchFolderBytes } from '../helpers/expanding.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';

const SPOOL_MAX = 50 * 1024 * 1024;
let dir: string;
let oneHz: string;
let legs: { local: string; remote: string };
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gw-disk-'));
  oneHz = path.join(dir, 'one-hertz.wav');
  legs = { local: path.join(dir, 'local.wav'), remote: path.join(dir, 'remote.wav') };
  await writeFile(oneHz, oneHertzFloatWav());
  await writeFile(legs.local, pcmLeg(64_000, 440));
  await writeFile(legs.remote, pcmLeg(64_000, 1000));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function legsForm(offsetMs: number): Promise<FormData> {
  const form = new FormData();
  form.append('jsondata', new Blob([JSON.stringify(SAMPLE_METADATA)], { type: 'application/json' }));
  form.append('attachment', await openAsBlob(legs.local), 'local.wav');
  form.append('remoteAttachment', await openAsBlob(legs.remote), 'remote.wav');
  form.append('remoteOffsetMs', String(offsetMs));
  return form;
}

/** The 413 of a reservation that can never fit in the 50 MiB spool. */
const NEVER_SPOOL = (what: string, mb: string): RegExp =>
  new RegExp(`^The ${what} would need ${mb} MB of disk, more than the spool can ever hold \\(52 MB\\)$`);
const spoolOf = (t: TestGateway): string => path.join(path.dirname(t.tmpDir), 'spool');
const report = (line: string): void => {
  if (process.env.HARDENING_REPORT) console.log(line);
};

describe('with the default MAX_EXPANSION (2000) and SPOOL_MAX_BYTES of 50 MiB', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ SPOOL_MAX_BYTES: String(SPOOL_MAX) });
  });
  afterAll(async () => {
    await t?.close();
  });

  const ROUTES = ['/v1/recordings', RECORDINGS_PATH, '/v1/transcode'];
  it.each(ROUTES)('%s: the 1 Hz float WAV is refused by MAX_EXPANSION before decoding', async (route) => {
    const requests = t.emulator.stats.snapshot().requests;
    const watch = watchFolderBytes(spoolOf(t));
    const res = await fetch(`${t.url}${route}`, { method: 'POST', body: await recordingForm(oneHz) });
    const peak = await watch.stop();
    expect(res.status).toBe(413);
    const body = (await res.json()) as { reason: number; message: string };
    expect(body.reason).toBe(2);
    expect(body.message).toMatch(/would be about 688 MB from an upload of 172 KB \((3999|4000) times its size\)/);
    expect(body.message).toMatch(/at most 2000 times \(MAX_EXPANSION\)$/);
    // Nothing but the upload itself ever reached the spool (it held 688 MB of parts before).
    expect(peak).toBeLessThanOrEqual(172_044 + 64 * 1024);
    report(`1 Hz float WAV on ${route}: 413, spool peak ${peak} bytes`);
    expect(t.emulator.stats.snapshot().requests).toBe(requests);
    expect(await t.settledTempEntries()).toEqual([]);
    expect(((await fetch(`${t.url}/v1/jobs`).then((r) => r.json())) as { count: number }).count).toBe(0);
  });

  it('two 64 KB legs with remoteOffsetMs=3600000 (115 MB) do not fit the spool: 413 before decoding', async () => {
    const watch = watchFolderBytes(spoolOf(t));
    const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: await legsForm(3_600_000) });
    const peak = await watch.stop();
    expect(res.status).toBe(413);
    const body = (await res.json()) as { reason: number; message: string };
    expect(body.reason).toBe(2);
    expect(body.message).toMatch(NEVER_SPOOL('merged call', '1\\d\\d'));
    expect(peak).toBeLessThanOrEqual(2 * 64_044 + 64 * 1024);
    report(`legs + 1 h offset: 413 "${body.message}", spool peak ${peak} bytes`);
    expect(await t.settledTempEntries()).toEqual([]);
  });

  it('the same legs with a 10 s offset are merged and delivered', async () => {
    const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: await legsForm(10_000) });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { output: { channels: number }; duration: string };
    expect(JSON.stringify(body)).toContain('PT14S');
  });

  it('an offset making the call longer than MAX_DURATION_SECONDS: 400 reason 2 before decoding', async () => {
    const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: await legsForm(43_200_000) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { reason: number; message: string };
    expect(body.reason).toBe(2);
    expect(body.message).toMatch(/aligned call would last 43204\.0 s .* more than the limit of 43200 seconds/);
  });
});

describe('with MAX_EXPANSION raised, the spool still bounds the 1 Hz file', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ SPOOL_MAX_BYTES: String(SPOOL_MAX), MAX_EXPANSION: '100000' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('413: it would need more than the spool can ever hold', async () => {
    const watch = watchFolderBytes(spoolOf(t));
    const res = await fetch(`${t.url}/v1/recordings`, { method: 'POST', body: await recordingForm(oneHz) });
    const peak = await watch.stop();
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(NEVER_SPOOL('converted audio', '\\d+'));
    expect(peak).toBeLessThanOrEqual(172_044 + 64 * 1024);
    report(`1 Hz float WAV, MAX_EXPANSION=100000: 413, spool peak ${peak} bytes`);
  });
});
