/**
 * The Reconciler against the real emulator over HTTP (port 0): ambiguous attempts made on purpose with the
 * emulator's faults, then the question "does Imagicle already hold this part?".
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import type { FaultInput } from '../../src/emulator/faults.js';
import { UpstreamClient } from '../../src/imagicle/client.js';
import { ImagicleReconciler, type ReconcileResult } from '../../src/imagicle/reconcile.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { plainWavHeader } from '../../src/media/wav-write.js';

const USER = { username: 'reader', password: 's3cret' };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const ATTEMPT_MS = 1000;

let work: string;
let wav: string;
let emulator: RunningEmulator;
let client: UpstreamClient;
let forwarding: UpstreamClient;

/** 1.5 s of 8 kHz 16-bit mono silence. */
const WAV_BYTES = 24_000;

function metadata(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    direction: 2,
    localParty: { phoneNumber: '376', username: 'giuliano' },
    pbxCallId: `call-${Math.random().toString(36).slice(2, 8)}`,
    duration: 'PT1.5S',
    notes: 'part 1/1',
    // A distinct start per test, written with an offset: Imagicle (the emulator) gives it back in UTC.
    startDateTime: `2026-12-0${1 + Math.floor(Math.random() * 8)}T1${Math.floor(Math.random() * 9)}:${String(
      Math.floor(Math.random() * 60),
    ).padStart(2, '0')}:00.1234567+01:00`,
    remoteParty: { phoneNumber: '123456' },
    ...extra,
  };
}

interface Attempt {
  startedAt: string;
  error: unknown;
}

/** One upload through the real client; the error (if any) is returned, not thrown. */
async function upload(meta: Record<string, unknown>, via = client, callerAuthorization?: string): Promise<Attempt> {
  const startedAt = new Date().toISOString();
  try {
    await via.postRecording({
      metadata: meta,
      audioPath: wav,
      audioBytes: WAV_BYTES + 44,
      contentType: 'audio/wave',
      filename: 'call.wav',
      callerAuthorization,
    });
    return { startedAt, error: undefined };
  } catch (error) {
    return { startedAt, error };
  }
}

function logSink(): { logger: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = createLogger('debug', { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

function reconciler(options: { via?: UpstreamClient; recheckMs?: number } = {}) {
  const { logger, lines } = logSink();
  const results: ReconcileResult[] = [];
  const r = new ImagicleReconciler(
    { mode: 'auto', attemptWindowMs: ATTEMPT_MS, recheckMs: options.recheckMs ?? 50, readRetryDelaysMs: [10] },
    { upstream: options.via ?? client, logger, observe: (result) => results.push(result) },
  );
  return { r, lines, results };
}

const question = (meta: Record<string, unknown>, attempt: Attempt, callerAuthorization?: string) => ({
  metadata: meta,
  callerAuthorization,
  attemptStartedAt: attempt.startedAt,
  signal: undefined,
});

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'reconcile-'));
  wav = path.join(work, 'call.wav');
  const header = plainWavHeader({ formatTag: 1, channels: 1, sampleRate: 8000, bitsPerSample: 16 }, WAV_BYTES);
  await writeFile(wav, Buffer.concat([header, Buffer.alloc(WAV_BYTES)]));
  emulator = await startEmulator({ port: 0, storageDir: path.join(work, 'imagicle'), ...USER });
  client = new UpstreamClient({ baseUrl: emulator.url, credentials: USER, timeoutMs: ATTEMPT_MS });
  forwarding = new UpstreamClient({ baseUrl: emulator.url, timeoutMs: ATTEMPT_MS });
});

afterEach(() => {
  emulator.faults.clear();
  emulator.reads.refuse(undefined);
});

afterAll(async () => {
  await client?.close();
  await forwarding?.close();
  await emulator?.close();
  await rm(work, { recursive: true, force: true });
});

const fault = (f: FaultInput) => emulator.faults.add(f);

describe('ImagicleReconciler against the emulator', () => {
  it('finds a part that was stored and never answered (the answer timed out)', async () => {
    const meta = metadata();
    fault({ afterStore: 'hang' });
    const attempt = await upload(meta);
    expect(attempt.error).toMatchObject({ code: 'UPSTREAM_TIMEOUT', detail: { bodyComplete: true } });
    const stored = emulator.store.list().filter((s) => s.metadata.pbxCallId === meta.pbxCallId);
    expect(stored).toHaveLength(1);

    const { r, results } = reconciler();
    expect(r.available()).toBeUndefined();
    expect(await r.check(question(meta, attempt))).toEqual({ kind: 'found', id: stored[0]?.id, others: [] });
    expect(results).toEqual(['found']);
    expect(r.available()).toBe(true);
  });

  it('finds a part stored before the connection was dropped', async () => {
    const meta = metadata();
    fault({ afterStore: 'reset' });
    const attempt = await upload(meta);
    expect(attempt.error).toMatchObject({ code: 'UPSTREAM_UNREACHABLE', detail: { bodyComplete: true } });
    const { r } = reconciler();
    const outcome = await r.check(question(meta, attempt));
    expect(outcome).toMatchObject({ kind: 'found', others: [] });
    expect(emulator.store.get((outcome as { id: string }).id)?.metadata.pbxCallId).toBe(meta.pbxCallId);
  });

  it('says absent, after a second look, when the dropped attempt stored nothing', async () => {
    const meta = metadata();
    fault({ reset: true });
    const attempt = await upload(meta);
    expect(attempt.error).toMatchObject({ detail: { bodyComplete: true } });
    const { r, results, lines } = reconciler();
    expect(await r.check(question(meta, attempt))).toEqual({ kind: 'absent' });
    expect(results).toEqual(['not_found']);
    expect(lines.some((l) => l.msg.includes('does not hold the part'))).toBe(true);
  });

  it('does not take a recording that differs in pbxCallId, remote number or notes for the part', async () => {
    const meta = metadata();
    // Same start, local number and direction: listed as candidates, refused on their details.
    for (const other of [
      { pbxCallId: 'another-call' },
      { remoteParty: { phoneNumber: '999' } },
      { notes: 'part 2/2' },
    ]) {
      expect((await upload({ ...meta, ...other })).error).toBeUndefined();
    }
    fault({ reset: true });
    const attempt = await upload(meta);
    const { r, lines } = reconciler();
    expect(await r.check(question(meta, attempt))).toEqual({ kind: 'absent' });
    const mismatches = lines
      .filter((l) => l.msg.includes('is another recording'))
      .map((l) => l as { mismatch?: string });
    expect(new Set(mismatches.map((m) => m.mismatch))).toEqual(new Set(['pbxCallId', 'remotePartyNumber', 'note']));
  });

  it('keeps the oldest of two stored copies and names the other', async () => {
    const meta = metadata();
    expect((await upload(meta)).error).toBeUndefined();
    fault({ afterStore: 'hang' });
    const attempt = await upload(meta);
    const [first, second] = emulator.store.list().filter((s) => s.metadata.pbxCallId === meta.pbxCallId);
    const { r, results } = reconciler();
    expect(await r.check(question(meta, attempt))).toEqual({ kind: 'found', id: first?.id, others: [second?.id] });
    expect(results).toEqual(['several']);
  });

  it('finds a part stored after the question was asked but before the attempt deadline', async () => {
    const meta = metadata();
    const attempt = { startedAt: new Date().toISOString(), error: undefined };
    const { r } = reconciler({ recheckMs: 0 });
    const asked = r.check(question(meta, attempt));
    // The upload lands while the reconciler waits for the attempt's deadline (IMAGICLE_TIMEOUT_MS after it began).
    expect((await upload(meta)).error).toBeUndefined();
    expect(await asked).toMatchObject({ kind: 'found', others: [] });
  });

  it('asks with the job’s forwarded Authorization when the gateway has no credentials', async () => {
    const meta = metadata();
    fault({ afterStore: 'hang' });
    const attempt = await upload(meta, forwarding, basic(USER.username, USER.password));
    const { r } = reconciler({ via: forwarding });
    expect(await r.check(question(meta, attempt, basic(USER.username, USER.password)))).toMatchObject({
      kind: 'found',
    });

    // Another caller whose credentials Imagicle refuses: off for that caller only, logged once.
    const { r: r2, lines } = reconciler({ via: forwarding });
    const wrong = basic('someone', 'else');
    for (let i = 0; i < 2; i += 1) {
      expect(await r2.check(question(meta, attempt, wrong))).toMatchObject({ kind: 'unavailable' });
    }
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    expect(r2.available()).toBeUndefined();
    expect(await r2.check(question(meta, attempt, basic(USER.username, USER.password)))).toMatchObject({
      kind: 'found',
    });
  });

  it.each([401, 403, 404, 405] as const)(
    'reads answered %s: unavailable, remembered for the upstream, one warning',
    async (status) => {
      emulator.reads.refuse(status);
      const meta = metadata();
      fault({ afterStore: 'hang' });
      const attempt = await upload(meta);
      const { r, lines, results } = reconciler();
      const first = await r.check(question(meta, attempt));
      expect(first).toMatchObject({ kind: 'unavailable' });
      expect(r.available()).toBe(false);
      // Remembered: reads back on at Imagicle, the gateway does not ask again until it restarts.
      emulator.reads.refuse(undefined);
      expect(await r.check(question(meta, attempt))).toEqual(first);
      const warnings = lines.filter((l) => l.level === 40);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.msg).toMatch(/reconciliation is off for this Imagicle/);
      expect(warnings[0]?.msg).toMatch(status >= 404 ? /older server/ : /Call Recording Base Access/);
      expect(results).toEqual(['unavailable', 'unavailable']);
    },
  );

  it('probe() tells /readyz before any question whether reads work (own credentials only)', async () => {
    const withCredentials = () =>
      new ImagicleReconciler(
        { mode: 'auto', attemptWindowMs: ATTEMPT_MS, recheckMs: 0, canProbe: true },
        { upstream: client, logger: createLogger('silent') },
      );
    expect(await withCredentials().probe()).toBe(true);
    emulator.reads.refuse(403);
    const refused = withCredentials();
    expect(await refused.probe()).toBe(false);
    expect(refused.unavailableReason()).toMatch(/Call Recording Base Access/);
    const { r } = reconciler({ via: forwarding }); // no own credentials: nothing to ask with
    expect(await r.probe()).toBeUndefined();
  });

  it('RECONCILE=off asks nothing', async () => {
    const r = new ImagicleReconciler(
      { mode: 'off', attemptWindowMs: ATTEMPT_MS, recheckMs: 0 },
      { upstream: client, logger: createLogger('silent') },
    );
    expect(r.available()).toBe(false);
    expect(await r.check(question(metadata(), { startedAt: new Date().toISOString(), error: undefined }))).toEqual({
      kind: 'unavailable',
      reason: 'RECONCILE=off',
    });
  });

  it('an unreachable Imagicle is unavailable for this question only', async () => {
    const down = new UpstreamClient({ baseUrl: 'http://127.0.0.1:9', credentials: USER, timeoutMs: ATTEMPT_MS });
    try {
      const { r } = reconciler({ via: down });
      const outcome = await r.check(question(metadata(), { startedAt: '2026-01-01T00:00:00Z', error: undefined }));
      expect(outcome).toMatchObject({ kind: 'unavailable', reason: expect.stringMatching(/list read failed/) });
      expect(r.available()).toBeUndefined();
    } finally {
      await down.close();
    }
  });

  it('stops waiting when the job is aborted', async () => {
    const { r } = reconciler();
    const controller = new AbortController();
    const asked = r.check({
      ...question(metadata(), { startedAt: new Date().toISOString(), error: undefined }),
      signal: controller.signal,
    });
    controller.abort();
    await expect(asked).rejects.toMatchObject({ name: 'AbortError' });
  });
});
