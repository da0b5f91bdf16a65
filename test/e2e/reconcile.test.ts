/**
 * Exactly once (issue 25): after an ambiguous attempt the gateway asks Imagicle (the emulator's read endpoints)
 * before it sends a part again. Real gateway, real emulator, real ffmpeg; ambiguous attempts made on purpose
 * with the emulator's `afterStore` faults (stored, then no answer / a dropped connection).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import type { JobView } from '../../src/delivery/view.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Small settings: an attempt's answer is awaited 1 s; the second look comes 100 ms after the first. */
const FAST = {
  RETRY_MAX_ATTEMPTS: '4',
  RETRY_MIN_DELAY_MS: '50',
  RETRY_MAX_DELAY_MS: '200',
  RETRY_MAX_TOTAL_MS: '5000',
  SPOOL_RETRY_MAX_DELAY_MS: '300',
  IMAGICLE_TIMEOUT_MS: '1000',
  IMAGICLE_CONNECT_TIMEOUT_MS: '500',
  RECONCILE: 'auto',
  RECONCILE_RECHECK_MS: '100',
};

let t: TestGateway;
let seq = 0;

beforeAll(async () => {
  t = await startTestGateway(FAST);
});
afterAll(async () => {
  await t?.close();
});

/** Metadata of its own per test: the start instant and pbxCallId are what the emulator is searched by. */
function call(name: string): Record<string, unknown> {
  seq += 1;
  return {
    ...SAMPLE_METADATA,
    pbxCallId: `reconcile-${name}-${seq}`,
    startDateTime: `2026-11-2${seq % 10}T1${seq % 10}:15:00.0000000+01:00`,
  };
}

const post = async (base: string, metadata: Record<string, unknown>, headers: Record<string, string> = {}) =>
  fetch(`${base}${RECORDINGS_PATH}`, {
    method: 'POST',
    body: await recordingForm(fixture('pcm16-mono.wav'), metadata),
    headers,
  });

const job = async (base: string, id: string): Promise<JobView> =>
  (await (await fetch(`${base}/v1/jobs/${id}`)).json()) as JobView;

const stored = (emulator: RunningEmulator, metadata: Record<string, unknown>) =>
  emulator.store.list().filter((r) => r.metadata.pbxCallId === metadata.pbxCallId);

async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The id a delivered part names, whatever shape the stored answer has (a JSON string, or `{ id }`). */
const idOf = (value: unknown): unknown =>
  typeof value === 'object' && value !== null && 'id' in value ? (value as { id: unknown }).id : value;

const counter = async (base: string, outcome: string): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`imagicle_gateway_reconciliations_total{outcome="${outcome}"}`));
  return Number(line?.split(' ')[1] ?? Number.NaN);
};

describe('reconciliation in the request (spool, DELIVERY=wait)', () => {
  it('stored then no answer, then the retry: found in Imagicle, one recording', async () => {
    const meta = call('hang');
    const found = await counter(t.url, 'found');
    t.emulator.faults.add({ afterStore: 'hang' });
    const res = await post(t.url, meta);
    expect(res.status).toBeLessThan(300);
    const jobId = res.headers.get('x-job-id')!;
    const copies = stored(t.emulator, meta);
    expect(copies).toHaveLength(1);
    const view = await job(t.url, jobId);
    expect(view).toMatchObject({ state: 'delivered', possibleDuplicates: 0 });
    expect(idOf(view.parts[0]?.id)).toBe(copies[0]?.id);
    expect(await counter(t.url, 'found')).toBe(found + 1);
    expect(t.logs.some((l) => l.includes(jobId) && l.includes('found in Imagicle'))).toBe(true);
  });

  it('slow headers (imported, answered after the timeout): found, one recording, no 504', async () => {
    const meta = call('slow');
    t.emulator.faults.add({ delayMs: 1500 });
    const res = await post(t.url, meta);
    expect(res.status).toBeLessThan(300);
    expect(stored(t.emulator, meta)).toHaveLength(1);
    expect(await job(t.url, res.headers.get('x-job-id')!)).toMatchObject({ state: 'delivered', possibleDuplicates: 0 });
  });

  it('stored then the connection dropped: found, one recording', async () => {
    const meta = call('reset');
    t.emulator.faults.add({ afterStore: 'reset' });
    const res = await post(t.url, meta);
    expect(res.status).toBeLessThan(300);
    expect(stored(t.emulator, meta)).toHaveLength(1);
    expect(await job(t.url, res.headers.get('x-job-id')!)).toMatchObject({ state: 'delivered', possibleDuplicates: 0 });
  });

  it('dropped before anything was stored: not found, sent again, one recording', async () => {
    const meta = call('absent');
    const notFound = await counter(t.url, 'not_found');
    t.emulator.faults.add({ reset: true });
    const res = await post(t.url, meta);
    expect(res.status).toBe(201);
    expect(stored(t.emulator, meta)).toHaveLength(1);
    expect(await job(t.url, res.headers.get('x-job-id')!)).toMatchObject({ state: 'delivered', possibleDuplicates: 0 });
    expect(await counter(t.url, 'not_found')).toBe(notFound + 1);
  });

  it('a duplicate already in Imagicle: the oldest is kept, nothing is sent again', async () => {
    const meta = call('several');
    // A copy from before (e.g. a blind retry of an older version): same call, same audio, already in Imagicle.
    expect((await post(t.url, meta)).status).toBe(201);
    const several = await counter(t.url, 'several');
    t.emulator.faults.add({ afterStore: 'hang' });
    const res = await post(t.url, meta);
    expect(res.status).toBeLessThan(300);
    const copies = stored(t.emulator, meta);
    expect(copies).toHaveLength(2); // the two that reached Imagicle; the retry sent nothing
    const view = await job(t.url, res.headers.get('x-job-id')!);
    expect(view.state).toBe('delivered');
    expect(idOf(view.parts[0]?.id)).toBe(copies[0]?.id);
    expect(await counter(t.url, 'several')).toBe(several + 1);
  });
});

describe("an attempt's deadline beyond the request's budget", () => {
  // IMAGICLE_TIMEOUT_MS 4 s, RETRY_MAX_TOTAL_MS 1 s: a dropped connection leaves Imagicle 4 s to go on importing,
  // longer than the request may wait. The caller gets 202 at once; the worker asks after the deadline.
  it('answered 202 without waiting for the deadline; the worker finds it, one recording', async () => {
    const g = await startTestGateway({ ...FAST, IMAGICLE_TIMEOUT_MS: '4000', RETRY_MAX_TOTAL_MS: '1000' });
    try {
      const meta = call('budget');
      g.emulator.faults.add({ afterStore: 'reset' });
      const res = await post(g.url, meta);
      expect(res.status).toBe(202);
      const jobId = res.headers.get('x-job-id')!;
      expect(await counter(g.url, 'found')).toBe(0); // nothing asked in the request
      const view = await until(
        () => job(g.url, jobId),
        (v) => v.state === 'delivered',
      );
      const copies = stored(g.emulator, meta);
      expect(copies).toHaveLength(1);
      expect(view).toMatchObject({ state: 'delivered', possibleDuplicates: 0 });
      expect(idOf(view.parts[0]?.id)).toBe(copies[0]?.id);
      expect(await counter(g.url, 'found')).toBe(1);
    } finally {
      await g.close();
    }
  });
});

describe('reads forbidden: the rule without reconciliation, with one warning', () => {
  it('one warning for the upstream, /readyz says reconciliation is off and why, counted as unavailable', async () => {
    const g = await startTestGateway(FAST);
    try {
      g.emulator.reads.refuse(405);
      for (const name of ['refused-1', 'refused-2']) {
        g.emulator.faults.add({ afterStore: 'hang' });
        await post(g.url, call(name));
      }
      const warnings = g.logs.filter((l) => l.includes('reconciliation is off for this Imagicle'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, status: 405 });
      const ready = (await (await fetch(`${g.url}/readyz`)).json()) as { reconciliation?: unknown };
      expect(ready.reconciliation).toEqual({ available: false, reason: expect.stringMatching(/older server/) });
      expect(await counter(g.url, 'unavailable')).toBe(2);
    } finally {
      await g.close();
    }
  });

  // Reads refused: the rule without reconciliation (hold unless RETRY_AMBIGUOUS=true), not a blind re-send.
  it('the ambiguous job is held as before (504, failed, ambiguous), one recording, the warning once', async () => {
    const g = await startTestGateway(FAST);
    try {
      g.emulator.reads.refuse(403);
      const results: Array<{ status: number; jobId: string }> = [];
      for (const name of ['forbidden-1', 'forbidden-2']) {
        const meta = call(name);
        g.emulator.faults.add({ afterStore: 'hang' });
        const res = await post(g.url, meta);
        results.push({ status: res.status, jobId: res.headers.get('x-job-id')! });
        expect(stored(g.emulator, meta)).toHaveLength(1);
      }
      for (const { status, jobId } of results) {
        expect(status).toBe(504);
        expect(await job(g.url, jobId)).toMatchObject({ state: 'failed', lastError: { ambiguous: true } });
      }
      const warnings = g.logs.filter((l) => l.includes('reconciliation is off for this Imagicle'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, status: 403 });
      const ready = (await (await fetch(`${g.url}/readyz`)).json()) as { reconciliation?: unknown };
      expect(ready.reconciliation).toMatchObject({ available: false, reason: expect.stringMatching(/Base Access/) });
    } finally {
      await g.close();
    }
  });
});

describe('kill -9 mid-attempt, then a restart', () => {
  let dir: string;
  let emulator: RunningEmulator;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'reconcile-crash-'));
    emulator = await startEmulator({ port: 0, storageDir: path.join(dir, 'emulator') });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await emulator?.close();
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  async function startChild(): Promise<{ process: ChildProcess; url: string; logs: Record<string, unknown>[] }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        PORT: '0',
        HOST: '127.0.0.1',
        IMAGICLE_URL: emulator.url,
        SPOOL_DIR: path.join(dir, 'spool'),
        TMP_DIR: path.join(dir, 'tmp'),
        LOG_LEVEL: 'info',
        ...FAST,
        // Wide enough to kill the gateway while it waits for Imagicle's answer.
        IMAGICLE_TIMEOUT_MS: '3000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const logs: Record<string, unknown>[] = [];
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`gateway did not start: ${JSON.stringify(logs.slice(-5))}`)),
        20_000,
      );
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'gateway listening') {
            clearTimeout(timer);
            resolve(entry.url as string);
          }
        } catch {
          // not a log line
        }
      });
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
    });
    return { process: child, url, logs };
  }

  /** Posts one recording whose upload Imagicle stores and never answers, kills the gateway, restarts it. */
  async function killMidAttemptAndRestart(name: string, headers: Record<string, string>): Promise<void> {
    const meta = call(name);
    const first = await startChild();
    emulator.faults.add({ afterStore: 'hang' });
    const answered = post(first.url, meta, headers).catch(() => undefined); // the connection dies with the gateway
    // Imagicle has it, the gateway is waiting for the answer: kill -9 now.
    await until(
      () => stored(emulator, meta).length,
      (n) => n === 1,
    );
    await new Promise<void>((resolve) => {
      first.process.once('exit', () => resolve());
      first.process.kill('SIGKILL');
    });
    await answered;

    const second = await startChild();
    try {
      const jobs = await until(
        async () => ((await (await fetch(`${second.url}/v1/jobs`)).json()) as { jobs: JobView[] }).jobs,
        (list) => list.some((j) => j.pbxCallId === meta.pbxCallId && j.state === 'delivered'),
      );
      const view = jobs.find((j) => j.pbxCallId === meta.pbxCallId);
      expect(view?.state).toBe('delivered');
      const copies = stored(emulator, meta);
      expect(copies).toHaveLength(1);
      expect(idOf(view?.parts[0]?.id)).toBe(copies[0]?.id);
      expect(view?.possibleDuplicates).toBe(0);
      expect(second.logs.some((l) => l.msg === 'found in Imagicle: not sent again')).toBe(true);
    } finally {
      second.process.kill('SIGKILL');
    }
  }

  // Parts not fsynced yet are rendered again at the restart: they keep their uncertainty (keepDelivered()), so the
  // part Imagicle stored is found, not sent again, and no possible duplicate is counted.
  it('a waiting request: the part Imagicle stored is found, not sent again', { timeout: 60_000 }, () =>
    killMidAttemptAndRestart('kill-waiting', {}),
  );
});
