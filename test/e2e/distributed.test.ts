/**
 * The distributed mode with real processes: a private redis-server (AOF,
 * appendfsync always), the emulator, two ROLE=api processes and two
 * ROLE=worker processes sharing one BLOB_DIR. Bursts, the same recording
 * at two api processes, kill -9 of workers mid-render and mid-delivery, a
 * 503 storm, a Redis crash and restart, and a 200 MB WAV.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import type { JobView } from '../../src/delivery/view.js';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA } from '../helpers/gateway.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const skip = redisUnavailable();
if (skip) process.stdout.write(`distributed.test.ts skipped: ${skip}\n`);

interface Child {
  name: string;
  process: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
}

let dir: string;
let redis: TestRedis;
let emulator: RunningEmulator;
const children = new Map<string, Child>();

async function startChild(name: string, role: 'api' | 'worker', env: Record<string, string> = {}): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      IMAGICLE_URL: emulator.url,
      QUEUE_URL: redis.url,
      BLOB_DIR: path.join(dir, 'blob'),
      ROLE: role,
      QUEUE_LOCK_MS: '2000',
      SPOOL_CONCURRENCY: '2',
      CONCURRENCY: '2',
      TMP_DIR: path.join(dir, 'tmp'),
      DEDUP_WINDOW: '24h',
      RETRY_MIN_DELAY_MS: '100',
      RETRY_MAX_DELAY_MS: '400',
      RETRY_MAX_TOTAL_MS: '1000',
      SPOOL_RETRY_MAX_DELAY_MS: '500',
      LOG_LEVEL: 'info',
      // These tests check the queue's own rules for an interrupted attempt; with Imagicle's reads a take-over waits
      // for the attempt's deadline (IMAGICLE_TIMEOUT_MS) and asks first (CAMPAIGN_QUEUE=1 in reconcile-campaign).
      RECONCILE: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start: ${JSON.stringify(logs.slice(-5))}`)),
      // tsx compiles the sources in each child: four at once on a loaded 2-core machine take tens of seconds.
      90_000,
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
    child.stderr!.resume();
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  const started = { name, process: child, url, logs };
  children.set(name, started);
  return started;
}

function kill9(child: Child): Promise<void> {
  children.delete(child.name);
  return new Promise((resolve) => {
    if (child.process.exitCode !== null) return resolve();
    child.process.once('exit', () => resolve());
    child.process.kill('SIGKILL');
  });
}

async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const api = (): Child => children.get('api1')!;
const meta = (pbxCallId: string) => ({ ...SAMPLE_METADATA, pbxCallId });
const upload = async (url: string, file: string, pbxCallId: string, headers: Record<string, string> = {}) =>
  fetch(`${url}${RECORDINGS_PATH}`, { method: 'POST', body: await recordingForm(file, meta(pbxCallId)), headers });
const stored = (pbxCallId: string): number =>
  emulator.store.list().filter((r) => r.metadata.pbxCallId === pbxCallId).length;
const job = async (id: string): Promise<JobView> =>
  (await (await fetch(`${api().url}/v1/jobs/${id}`)).json()) as JobView;
const takenBy = (id: string): Child | undefined =>
  [...children.values()].find((c) => c.logs.some((l) => l.jobId === id && l.msg === 'job taken'));

describe.skipIf(skip !== undefined)('distributed mode: api and worker processes over Redis', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'distributed-'));
    redis = await TestRedis.start();
    emulator = await startEmulator({ port: 0, storageDir: path.join(dir, 'emulator') });
    await Promise.all([
      startChild('api1', 'api'),
      startChild('api2', 'api'),
      startChild('worker1', 'worker'),
      startChild('worker2', 'worker'),
    ]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([...children.values()].map(kill9));
    await emulator?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  it('is ready only with Redis and BLOB_DIR; warns about nothing with AOF + always + noeviction', async () => {
    const ready = (await (await fetch(`${api().url}/readyz`)).json()) as {
      status: string;
      redis: { ok: boolean };
      blobDir: { ok: boolean };
    };
    expect(ready).toMatchObject({ status: 'ready', redis: { ok: true }, blobDir: { ok: true } });
    expect(api().logs.some((l) => l.msg === 'Redis durability settings checked')).toBe(true);
    // A worker takes no uploads.
    expect((await upload(children.get('worker1')!.url, fixture('pcm16-mono.wav'), 'to-worker')).status).toBe(404);
  });

  it('a burst of 60 uploads: every one answered 201 and delivered exactly once', async () => {
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        upload(i % 2 ? api().url : children.get('api2')!.url, fixture('pcm16-mono.wav'), `burst-${i}`),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(60).fill(201));
    for (let i = 0; i < 60; i++) expect(stored(`burst-${i}`), `burst-${i}`).toBe(1);
    // Both workers took part.
    for (const w of ['worker1', 'worker2'])
      expect(children.get(w)!.logs.some((l) => l.msg === 'job delivered')).toBe(true);
    // Delivered jobs keep no audio in BLOB_DIR: only the console's pictures (until retention), once drawn.
    const jobsDir = path.join(dir, 'blob', 'jobs');
    const left = await until(
      async () => {
        const files: string[] = [];
        for (const entry of await readdir(jobsDir, { withFileTypes: true })) {
          if (!entry.isDirectory()) files.push(entry.name);
          else for (const f of await readdir(path.join(jobsDir, entry.name))) files.push(`${entry.name}/${f}`);
        }
        return files.filter((f) => !/^[0-9a-f-]{36}\/waveform-0\.png$/.test(f));
      },
      (files) => files.length === 0,
      10_000,
    );
    expect(left).toEqual([]);
  }, 90_000);

  it('the same recording at two api processes at once: one delivery, the other is its duplicate', async () => {
    const [a, b] = await Promise.all([
      upload(api().url, fixture('pcm16-stereo.wav'), 'twice'),
      upload(children.get('api2')!.url, fixture('pcm16-stereo.wav'), 'twice'),
    ]);
    const duplicate = [a, b].find((r) => r.headers.get('x-duplicate-of'));
    const first = [a, b].find((r) => !r.headers.get('x-duplicate-of'));
    expect(first?.status).toBe(201);
    expect(duplicate).toBeDefined();
    expect([201, 202]).toContain(duplicate!.status);
    expect(duplicate!.headers.get('x-duplicate-of')).toBe(first!.headers.get('x-job-id'));
    await until(
      () => stored('twice'),
      (n) => n >= 1,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(stored('twice')).toBe(1);
    // Waveforms for queued jobs: the worker drew them as it delivered; another api process serves them from BLOB_DIR.
    const id = first!.headers.get('x-job-id')!;
    for (const channel of [0, 1]) {
      const picture = await until(
        async () => {
          const res = await fetch(`${children.get('api2')!.url}/v1/jobs/${id}/waveform/${channel}.png`);
          return {
            status: res.status,
            type: res.headers.get('content-type'),
            bytes: Buffer.from(await res.arrayBuffer()),
          };
        },
        (p) => p.status === 200,
        10_000,
      );
      expect(picture.status).toBe(200);
      expect(picture.type).toBe('image/png');
      expect(picture.bytes.subarray(1, 4).toString()).toBe('PNG');
    }
  });

  it('another owner does not see the job (jobs API scoped by owner)', async () => {
    const res = await upload(api().url, fixture('pcm16-mono.wav'), 'owned', { Authorization: 'Basic dXNlcjpwYXNz' });
    expect(res.status).toBe(201);
    const id = res.headers.get('x-job-id')!;
    expect((await fetch(`${api().url}/v1/jobs/${id}`)).status).toBe(404);
    expect(
      (await fetch(`${api().url}/v1/jobs/${id}`, { headers: { Authorization: 'Basic dXNlcjpwYXNz' } })).status,
    ).toBe(200);
  });

  it('a worker reserves what a job will write in BLOB_DIR first: a job that can never fit fails, unrendered', async () => {
    // A queue of its own (Redis database 1), so that no other test's worker takes this job, nor this worker theirs.
    const own = {
      QUEUE_URL: redis.url.replace(/\/0$/, '/1'),
      BLOB_DIR: path.join(dir, 'blob-full'),
      TMP_DIR: path.join(dir, 'tmp-full'),
    };
    const [front] = await Promise.all([
      startChild('api-full', 'api', own),
      // More free space kept than the file system has: no render can ever be reserved.
      startChild('worker-full', 'worker', { ...own, MIN_FREE_DISK_BYTES: String(Number.MAX_SAFE_INTEGER) }),
    ]);
    try {
      const res = await fetch(`${front.url}${RECORDINGS_PATH}`, {
        method: 'POST',
        body: await recordingForm(fixture('opus-stereo.opus'), meta('no-room')),
        headers: { Prefer: 'respond-async' },
      });
      expect(res.status).toBe(202);
      const id = res.headers.get('x-job-id')!;
      const view = async (): Promise<JobView> => (await (await fetch(`${front.url}/v1/jobs/${id}`)).json()) as JobView;
      const failed = await until(view, (v) => v.state === 'failed');
      expect(failed.state).toBe('failed');
      expect(failed.lastError?.status).toBe(413);
      expect(failed.lastError?.message).toMatch(/more than the shared folder \(BLOB_DIR\) can ever hold/);
      expect(stored('no-room')).toBe(0);
    } finally {
      await Promise.all([kill9(children.get('api-full')!), kill9(children.get('worker-full')!)]);
    }
  });

  it('a 503 from Imagicle pauses every worker (a queue-wide rate limit), then all are delivered once', async () => {
    emulator.faults.add({ status: 503, retryAfter: 2 });
    const first = await upload(api().url, fixture('pcm16-mono.wav'), 'storm-0', { Prefer: 'respond-async' });
    expect(first.status).toBe(202);
    await until(
      () => emulator.stats.snapshot().faulted,
      (n) => n >= 1,
    );
    const faultedAt = Date.now();
    const requests = emulator.stats.snapshot().requests;
    const more = await Promise.all(
      [1, 2, 3].map((i) => upload(api().url, fixture('pcm16-mono.wav'), `storm-${i}`, { Prefer: 'respond-async' })),
    );
    expect(more.map((r) => r.status)).toEqual([202, 202, 202]);
    // Two idle workers with room for four jobs, and yet nothing reaches Imagicle until the Retry-After is over.
    await new Promise((r) => setTimeout(r, Math.max(0, 1600 - (Date.now() - faultedAt))));
    expect(emulator.stats.snapshot().requests).toBe(requests);
    for (const i of [0, 1, 2, 3])
      expect(
        await until(
          () => stored(`storm-${i}`),
          (n) => n >= 1,
        ),
      ).toBe(1);
  });

  it('kill -9 of a worker while ffmpeg runs: another worker takes the job over, delivered once', async () => {
    const long = path.join(dir, 'long.flac');
    await run('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'sine=f=300:r=48000:d=1200',
      '-c:a',
      'flac',
      '-compression_level',
      '0',
      '-y',
      long,
    ]);
    const res = await upload(api().url, long, 'kill-render', { Prefer: 'respond-async' });
    const id = res.headers.get('x-job-id')!;
    const holder = await until(
      () => takenBy(id),
      (c) => c !== undefined,
    );
    expect(holder).toBeDefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(stored('kill-render')).toBe(0);
    await kill9(holder!);
    await startChild(holder!.name, 'worker');
    expect(
      await until(
        () => stored('kill-render'),
        (n) => n >= 1,
        60_000,
      ),
    ).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(stored('kill-render')).toBe(1);
    expect((await job(id)).possibleDuplicates).toBe(0);
  }, 90_000);

  it('kill -9 of a worker during delivery (RECONCILE=off): taken over, delivered; the possible duplicate is reported', async () => {
    emulator.faults.add({ delayMs: 3000 });
    const before = emulator.stats.snapshot().requests;
    const res = await upload(api().url, fixture('pcm16-mono.wav'), 'kill-deliver', { Prefer: 'respond-async' });
    const id = res.headers.get('x-job-id')!;
    await until(
      () => emulator.stats.snapshot().requests,
      (n) => n > before,
    );
    const holder = takenBy(id)!;
    expect((await job(id)).state).toBe('delivering');
    await kill9(holder);
    // Without Imagicle's reads, the rule after a crash: sent again, counted (with them: reconcile-campaign.test.ts).
    await startChild(holder.name, 'worker');
    const view = await until(
      () => job(id),
      (j) => j.state === 'delivered',
      60_000,
    );
    expect(view.state).toBe('delivered');
    // The killed attempt was imported (the emulator answers late but stores it): the documented duplicate window.
    await until(
      () => stored('kill-deliver'),
      (n) => n >= 2,
      5000,
    );
    expect(stored('kill-deliver')).toBe(2);
    expect(view.possibleDuplicates).toBe(1);
  }, 90_000);

  it('Redis killed and restarted (AOF): no accepted job is lost', async () => {
    const answers = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => upload(api().url, fixture('alaw-mono.wav'), `aof-${i}`, { Prefer: 'respond-async' })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(5).fill(202));
    await redis.kill();
    await new Promise((r) => setTimeout(r, 500));
    await redis.startProcess();
    for (const i of [0, 1, 2, 3, 4])
      expect(
        await until(
          () => stored(`aof-${i}`),
          (n) => n >= 1,
          60_000,
        ),
        `aof-${i}`,
      ).toBe(1);
  }, 90_000);

  // The producer has no offline queue: an enqueue while Redis is away fails now (503, its blob removed), and can
  // never become a job when Redis returns (a job whose audio is gone, sent to nobody who asked for it).
  it('Redis down during an upload: 503 at once; when Redis returns, no job is made of it', async () => {
    await redis.kill();
    const refused = await upload(api().url, fixture('alaw-mono.wav'), 'offline-1', { Prefer: 'respond-async' });
    await redis.startProcess();
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { message: string }).message).toBeTruthy();
    // A later upload is delivered: the workers are back on Redis; the refused one never shows up.
    // (The api reconnects within a second or two; until then it answers 503 too, as a client would be told to retry.)
    const later = await until(
      () => upload(api().url, fixture('alaw-mono.wav'), 'offline-2', { Prefer: 'respond-async' }),
      (r) => r.status !== 503,
      20_000,
    );
    expect(later.status).toBe(202);
    expect(
      await until(
        () => stored('offline-2'),
        (n) => n >= 1,
        60_000,
      ),
    ).toBe(1);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(stored('offline-1')).toBe(0);
    const listed = async (q: string): Promise<number> =>
      ((await (await fetch(`${api().url}/v1/jobs?q=${q}`)).json()) as { jobs: unknown[] }).jobs.length;
    expect(await listed('offline-2')).toBe(1);
    expect(await listed('offline-1')).toBe(0);
  }, 90_000);

  it('a 200 MB WAV end to end: passed through in one part, exact duration', async () => {
    const big = path.join(dir, 'big.wav');
    // 16-bit mono 8 kHz: 16,000 bytes a second; 13,107.2 s is 209,715,200 bytes of audio.
    await run('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'anoisesrc=r=8000:a=0.1:d=13107.2',
      '-c:a',
      'pcm_s16le',
      '-ac',
      '1',
      '-y',
      big,
    ]);
    expect((await stat(big)).size).toBeGreaterThan(200 * 1024 * 1024);
    const res = await upload(api().url, big, 'big');
    expect(res.status).toBe(201);
    const [recording] = emulator.store.list().filter((r) => r.metadata.pbxCallId === 'big');
    expect(recording?.metadata.duration).toBe('PT3H38M27.2S');
    expect(recording?.format).toMatchObject({ codec: 'pcm_s16le', channels: 1, sampleRate: 8000 });
    expect(recording?.format.durationSeconds).toBeCloseTo(13107.2, 3);
    await rm(big, { force: true });
  }, 120_000);
});
