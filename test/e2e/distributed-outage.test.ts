/**
 * A weekend outage in the distributed mode (issue 21), with real processes: a private redis-server, the emulator
 * behind a proxy that counts uploads in flight, one ROLE=api and two ROLE=worker processes (2 slots each).
 * While Imagicle answers 503, the queued jobs are prepared (state `ready`) and park; at most one probe at a
 * time reaches Imagicle, whichever worker holds the shared breaker's turn, and parked jobs are not fetched
 * again. When Imagicle returns, every job is delivered once, oldest first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import type { JobView } from '../../src/delivery/view.js';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA } from '../helpers/gateway.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const skip = redisUnavailable();
if (skip) process.stdout.write(`distributed-outage.test.ts skipped: ${skip}\n`);

/** Jobs queued during the outage. */
const N = 24;
/** Slots in all: two workers × SPOOL_CONCURRENCY 2. */
const SLOTS = 4;

interface Child {
  name: string;
  process: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
}

/** Imagicle as the gateway sees it: the emulator, with uploads in flight counted. */
interface CountingProxy {
  url: string;
  inFlight: number;
  maxInFlight: number;
  uploads: number;
  server: Server;
}

let dir: string;
let redis: TestRedis;
let emulator: RunningEmulator;
let proxy: CountingProxy;
const children: Child[] = [];

async function startProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  const counter = { inFlight: 0, maxInFlight: 0, uploads: 0 } as CountingProxy;
  counter.server = createServer((req, res) => {
    const upload = req.method === 'POST' && req.url?.startsWith(RECORDINGS_PATH) === true;
    if (upload) {
      counter.uploads += 1;
      counter.inFlight += 1;
      counter.maxInFlight = Math.max(counter.maxInFlight, counter.inFlight);
    }
    let done = false;
    const end = (): void => {
      if (upload && !done) counter.inFlight -= 1;
      done = true;
    };
    const out = httpRequest(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('end', end);
      },
    );
    out.on('error', () => {
      end();
      res.destroy();
    });
    res.on('close', end);
    req.pipe(out);
  });
  await new Promise<void>((resolve) => counter.server.listen(0, '127.0.0.1', resolve));
  const address = counter.server.address() as { port: number };
  counter.url = `http://127.0.0.1:${address.port}`;
  return counter;
}

async function startChild(name: string, role: 'api' | 'worker'): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      IMAGICLE_URL: proxy.url,
      QUEUE_URL: redis.url,
      BLOB_DIR: path.join(dir, 'blob'),
      ROLE: role,
      QUEUE_LOCK_MS: '5000',
      SPOOL_CONCURRENCY: String(SLOTS / 2),
      CONCURRENCY: '2',
      TMP_DIR: path.join(dir, 'tmp'),
      DEDUP_WINDOW: '24h',
      // The breaker's backoff: probes every 0.2-0.6 s, so that many of them meet the outage.
      RETRY_MIN_DELAY_MS: '200',
      RETRY_MAX_DELAY_MS: '600',
      RETRY_MAX_TOTAL_MS: '1000',
      SPOOL_RETRY_MAX_DELAY_MS: '600',
      LOG_LEVEL: 'info',
      RECONCILE: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start: ${JSON.stringify(logs.slice(-5))}`)),
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
  children.push(started);
  return started;
}

async function until<T>(what: () => Promise<T> | T, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const workers = (): Child[] => children.filter((c) => c.name.startsWith('worker'));
const taken = (): number => workers().reduce((n, w) => n + w.logs.filter((l) => l.msg === 'job taken').length, 0);

describe.skipIf(skip !== undefined)('distributed mode: an outage of Imagicle', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'distributed-outage-'));
    redis = await TestRedis.start();
    emulator = await startEmulator({ port: 0, storageDir: path.join(dir, 'emulator') });
    proxy = await startProxy(emulator.url);
    await Promise.all([startChild('api', 'api'), startChild('worker1', 'worker'), startChild('worker2', 'worker')]);
  }, 120_000);
  afterAll(async () => {
    for (const child of children) child.process.kill('SIGKILL');
    await new Promise<void>((resolve) => proxy?.server.close(() => resolve()));
    await emulator?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  it('prepares the backlog with one probe at a time, then delivers every job once, oldest first', async () => {
    const api = children.find((c) => c.name === 'api')!;
    // Imagicle refuses every upload, slowly enough that probes overlapping would be seen.
    emulator.faults.add({ status: 503, count: 1_000_000, delayMs: 150 });
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${api.url}${RECORDINGS_PATH}`, {
        method: 'POST',
        body: await recordingForm(fixture('opus-stereo.opus'), { ...SAMPLE_METADATA, pbxCallId: `outage-${i}` }),
        headers: { Prefer: 'respond-async' },
      });
      expect(res.status).toBe(202);
      ids.push(res.headers.get('x-job-id')!);
      // Distinct acceptance times: the order the test expects is unambiguous.
      await sleep(5);
    }
    const counts = async (): Promise<Record<string, number>> =>
      ((await (await fetch(`${api.url}/v1/jobs?limit=1`)).json()) as { counts: Record<string, number> }).counts;
    // Prepared while Imagicle refuses: every job is `ready` (converted, measured), none delivered.
    const prepared = await until(counts, (c) => c.ready === N);
    expect(prepared).toMatchObject({ ready: N, received: 0, delivered: 0 });
    expect(emulator.store.list()).toHaveLength(0);

    // Parked jobs are not fetched again: over a few seconds of outage, the only jobs taken are the probes.
    const takenBefore = taken();
    const uploadsBefore = proxy.uploads;
    await sleep(3000);
    const probes = proxy.uploads - uploadsBefore;
    expect(probes).toBeGreaterThan(1);
    expect(taken() - takenBefore).toBeLessThanOrEqual(probes + 1);
    // Never more than one upload at a time reached Imagicle once the breaker had opened.
    const outageUploads = proxy.uploads;
    expect(proxy.maxInFlight).toBeLessThanOrEqual(SLOTS);
    const maxDuringProbes = proxy.maxInFlight;
    proxy.maxInFlight = proxy.inFlight;
    await sleep(2000);
    expect(proxy.maxInFlight).toBe(1);
    expect(proxy.uploads).toBeGreaterThan(outageUploads);

    // Imagicle returns.
    emulator.faults.clear();
    const stored = await until(
      () => emulator.store.list(),
      (list) => list.length >= N,
    );
    await sleep(500);
    expect(emulator.store.list()).toHaveLength(N);
    const order = stored.map((r) => Number(String(r.metadata.pbxCallId).replace('outage-', '')));
    // Each once.
    expect([...order].sort((a, b) => a - b)).toEqual(ids.map((_, i) => i));
    // Oldest first: a job leaves at most as far from its place as there are slots working at once.
    for (const [position, i] of order.entries())
      expect(Math.abs(position - i), `job ${i} at ${position}`).toBeLessThan(SLOTS);
    for (const id of ids) {
      const job = (await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as JobView;
      expect(job.state).toBe('delivered');
      expect(job.possibleDuplicates).toBe(0);
    }
    process.stdout.write(
      `outage: ${outageUploads} uploads refused, at most ${maxDuringProbes} at once before the breaker opened\n`,
    );
  }, 180_000);
});
