/**
 * A small fault campaign (issue 25): a gateway killed with SIGKILL again and again while Imagicle (the emulator)
 * answers slowly, some answers coming only after the gateway gave up on them (stored, unanswered: ambiguous).
 * Every recording is posted until the gateway accepted it; at the end each one must be in Imagicle exactly once:
 * zero duplicates, zero losses.
 *
 * CI-sized by default (24 recordings, a kill every 3–5 s while they arrive and are delivered, at most one per six
 * recordings, at least four); `CAMPAIGN_RECORDINGS=120` for the figures, `CAMPAIGN_QUEUE=1` for the
 * distributed mode, and
 * `CAMPAIGN_RECONCILE=off` for the same campaign without reconciliation and with RETRY_AMBIGUOUS=true (then
 * duplicates are counted, not asserted). The summary line goes to stdout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA } from '../helpers/gateway.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import type { FaultInput } from '../../src/emulator/faults.js';
import type { JobView } from '../../src/delivery/view.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RECORDINGS = Number(process.env.CAMPAIGN_RECORDINGS ?? 24);
const RECONCILE = process.env.CAMPAIGN_RECONCILE === 'off' ? 'off' : 'auto';
/** CAMPAIGN_QUEUE=1: the distributed mode (a private redis-server, BLOB_DIR; the killed process is the worker). */
const QUEUE = process.env.CAMPAIGN_QUEUE === '1';
/** Imagicle's answer is awaited this long; the slower answers below make ambiguous attempts. */
const TIMEOUT_MS = 1000;
/** Imagicle's behaviour, one entry per upload request, cycled: mostly slow, some too slow, some 503s. */
const IMAGICLE: FaultInput[] = [
  { delayMs: 300 },
  { delayMs: 1500 }, // stored, answered after the gateway's timeout
  { delayMs: 700 },
  { status: 503, delayMs: 200 },
  { afterStore: 'hang' }, // stored, never answered
  { delayMs: 500 },
];
const KILL_EVERY_MS = [3000, 5000, 4000];
const MAX_KILLS = Number(process.env.CAMPAIGN_KILLS ?? Math.max(4, Math.ceil(RECORDINGS / 6)));

let dir: string;
let emulator: RunningEmulator;
let gateway: { process: ChildProcess; url: string } | undefined;
let redis: TestRedis | undefined;

const cycle = <T>(values: readonly T[], i: number): T => values[i % values.length] as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function startGateway(): Promise<{ process: ChildProcess; url: string }> {
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
      DEDUP_WINDOW: '24h',
      RETRY_MIN_DELAY_MS: '50',
      RETRY_MAX_DELAY_MS: '300',
      RETRY_MAX_TOTAL_MS: '4000',
      SPOOL_RETRY_MAX_DELAY_MS: '500',
      SPOOL_CONCURRENCY: '4',
      IMAGICLE_TIMEOUT_MS: String(TIMEOUT_MS),
      IMAGICLE_CONNECT_TIMEOUT_MS: '500',
      RECONCILE,
      RECONCILE_RECHECK_MS: '200',
      // Without reconciliation an ambiguous job is held for an operator; the "before" figure is a blind retry.
      RETRY_AMBIGUOUS: RECONCILE === 'off' ? 'true' : 'false',
      LOG_LEVEL: 'info',
      ...(redis ? { QUEUE_URL: redis.url, BLOB_DIR: path.join(dir, 'blob'), QUEUE_LOCK_MS: '2000' } : {}),
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start within 60 s')), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.includes('"gateway listening"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}`));
    });
  });
  return { process: child, url };
}

function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const metadata = (i: number) => ({
  ...SAMPLE_METADATA,
  pbxCallId: `campaign-${i}`,
  // One start per recording, written with an offset: the emulator gives it back in UTC.
  startDateTime: new Date(Date.UTC(2026, 10, 1, 8) + i * 60_000).toISOString().replace('Z', '+00:00'),
});

/** Posts recording i until a gateway accepted it (202, or the first one's answer for a resend it recognised). */
async function postUntilAccepted(i: number, stop: { at: number }): Promise<void> {
  for (;;) {
    if (Date.now() > stop.at) throw new Error(`recording ${i} was never accepted`);
    const base = gateway?.url;
    if (base) {
      try {
        const res = await fetch(`${base}${RECORDINGS_PATH}`, {
          method: 'POST',
          body: await recordingForm(fixture('pcm16-mono.wav'), metadata(i)),
          headers: { Prefer: 'respond-async' },
        });
        if (res.status < 300) return;
      } catch {
        // The gateway died under the request: the source sends again.
      }
    }
    await sleep(200);
  }
}

async function allDelivered(base: string): Promise<boolean> {
  try {
    const { jobs } = (await (await fetch(`${base}/v1/jobs`)).json()) as { jobs: JobView[] };
    return jobs.length >= RECORDINGS && jobs.every((j) => j.state === 'delivered');
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'campaign-'));
  if (QUEUE && !redisUnavailable()) redis = await TestRedis.start();
  emulator = await startEmulator({ port: 0, storageDir: path.join(dir, 'emulator') });
  emulator.faults.add(Array.from({ length: RECORDINGS * 6 }, (_, i) => cycle(IMAGICLE, i)));
});
afterAll(async () => {
  if (gateway) await kill9(gateway.process);
  await emulator?.close();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

describe('kill -9 while Imagicle answers slowly', () => {
  it(`${RECORDINGS} recordings, RECONCILE=${RECONCILE}: each in Imagicle once`, { timeout: 1_500_000 }, async () => {
    const started = Date.now();
    const stop = { at: started + 600_000 };
    gateway = await startGateway();
    let kills = 0;
    let posting = true;
    const killer = (async () => {
      // Kills while the recordings arrive and are delivered (MAX_KILLS at most, and at least four).
      for (let k = 0; k < MAX_KILLS; k += 1) {
        await sleep(cycle(KILL_EVERY_MS, k));
        if (!gateway) break;
        if (k >= 4 && !posting && (await allDelivered(gateway.url))) break;
        const dying = gateway;
        gateway = undefined;
        await kill9(dying.process);
        kills += 1;
        gateway = await startGateway();
      }
    })();
    // Two sources at once, each sending its recordings one after the other.
    const sources = [0, 1].map(async (s) => {
      for (let i = s; i < RECORDINGS; i += 2) await postUntilAccepted(i, stop);
    });
    await Promise.all(sources);
    posting = false;
    await killer;
    // A killed distributed worker's job waits for BullMQ's stalled check: the deliveries get as long again.
    const deliveredBy = Date.now() + 600_000;
    for (;;) {
      if (gateway && (await allDelivered(gateway.url))) break;
      if (Date.now() > deliveredBy) break;
      await sleep(250);
    }

    const counts = new Map<string, number>();
    const stored = emulator.store.list();
    for (const r of stored) {
      const id = String(r.metadata.pbxCallId);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const duplicates = [...counts.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
    const lost = Array.from({ length: RECORDINGS }, (_, i) => `campaign-${i}`).filter((id) => !counts.has(id));
    const reconciliations = await fetch(`${gateway!.url}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    process.stdout.write(
      `${JSON.stringify({
        campaign: 'kill -9 + slow Imagicle',
        reconcile: RECONCILE,
        mode: redis ? 'distributed' : 'spool',
        recordings: RECORDINGS,
        kills,
        requests: emulator.stats.snapshot(),
        stored: stored.length,
        duplicates,
        lost: lost.length,
        seconds: Math.round((Date.now() - started) / 1000),
        lastProcessReconciliations: reconciliations
          .split('\n')
          .filter((l) => l.startsWith('imagicle_gateway_reconciliations_total{')),
      })}\n`,
    );
    expect(lost).toEqual([]);
    if (RECONCILE === 'auto') expect(duplicates).toBe(0);
  });
});
