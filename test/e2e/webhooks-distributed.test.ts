/**
 * Webhooks in the distributed mode, with real processes: a private
 * redis-server, the emulator, one ROLE=api and two ROLE=worker processes,
 * each running a webhook dispatcher over the one Redis outbox. Every event is
 * sent once in the normal case; a retried one keeps its webhook-id whichever
 * process sends it; a worker killed while it renders does not make a second
 * recording.delivered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startEmulator, type RunningEmulator } from '../../src/emulator/server.js';
import { RECORDINGS_PATH } from '../../src/imagicle/client.js';
import { fixture } from '../helpers/fixtures.js';
import { recordingForm, SAMPLE_METADATA } from '../helpers/gateway.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';
import { newSecret, until, WebhookReceiver } from '../helpers/webhook-receiver.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const skip = redisUnavailable();

interface Child {
  name: string;
  process: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
}

type Event = { type: string; data: { jobId: string; pbxCallId: string } };

let dir: string;
let redis: TestRedis;
let emulator: RunningEmulator;
let receiver: WebhookReceiver;
const secret = newSecret();
const children = new Map<string, Child>();

async function startChild(name: string, role: 'api' | 'worker'): Promise<Child> {
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
      CONCURRENCY: '2',
      TMP_DIR: path.join(dir, `tmp-${name}`),
      DEDUP_WINDOW: '0',
      RETRY_MIN_DELAY_MS: '100',
      RETRY_MAX_DELAY_MS: '400',
      RETRY_MAX_TOTAL_MS: '1000',
      SPOOL_RETRY_MAX_DELAY_MS: '500',
      WEBHOOKS: JSON.stringify({ '*': [{ url: receiver.url, secret, allowPrivate: true }] }),
      WEBHOOK_RETRY_MIN_DELAY_MS: '100',
      WEBHOOK_RETRY_MAX_DELAY_MS: '300',
      LOG_LEVEL: 'info',
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
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
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

const upload = async (file: string, pbxCallId: string) =>
  fetch(`${children.get('api')!.url}${RECORDINGS_PATH}`, {
    method: 'POST',
    body: await recordingForm(file, { ...SAMPLE_METADATA, pbxCallId }),
    headers: { Prefer: 'respond-async' },
  });

const deliveredEvents = (jobId: string) =>
  receiver.received.filter((r) => {
    const e = r.verified as Event | undefined;
    return e?.type === 'recording.delivered' && e.data.jobId === jobId;
  });

describe.skipIf(skip !== undefined)('webhooks in the distributed mode', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'webhooks-distributed-'));
    redis = await TestRedis.start();
    emulator = await startEmulator({ port: 0, storageDir: path.join(dir, 'emulator') });
    receiver = new WebhookReceiver([secret]);
    await receiver.start();
    await Promise.all([startChild('api', 'api'), startChild('worker1', 'worker'), startChild('worker2', 'worker')]);
  }, 200_000);
  afterAll(async () => {
    await Promise.all([...children.values()].map(kill9));
    await receiver?.stop();
    await emulator?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  it('each recording.delivered is sent once; a retried one keeps its webhook-id', async () => {
    // The receiver refuses its first 6 requests: those webhooks are retried, by whichever process.
    receiver.answer = (n) => (n < 6 ? 503 : 204);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await upload(fixture('pcm16-mono.wav'), `dist-${i}`);
      expect(res.status).toBe(202);
      ids.push(res.headers.get('x-job-id')!);
    }
    await until(() => ids.every((id) => deliveredEvents(id).some((r) => r.verified)), 'every job delivered', 90_000);
    // Acknowledged once each; the refused attempts were repeats of the same webhook-id.
    const acknowledged = receiver.received.slice(6);
    for (const id of ids) {
      const events = deliveredEvents(id);
      expect(new Set(events.map((r) => r.id)).size, id).toBe(1);
      expect(
        acknowledged.filter((r) => r.id === events[0]!.id),
        id,
      ).toHaveLength(1);
    }
    const refused = receiver.received.slice(0, 6).map((r) => r.id);
    for (const webhookId of refused) expect(acknowledged.map((r) => r.id)).toContain(webhookId);
  }, 120_000);

  it('kill -9 of a worker while it renders: taken over, one recording.delivered', async () => {
    receiver.answer = () => 204;
    const long = path.join(dir, 'long.flac');
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=300:r=48000:d=900', '-c:a', 'flac', '-y', long]);
    const res = await upload(long, 'dist-kill');
    const id = res.headers.get('x-job-id')!;
    let holder: Child | undefined;
    await until(() => {
      holder = [...children.values()].find((c) => c.logs.some((l) => l.jobId === id && l.msg === 'job taken'));
      return holder !== undefined;
    }, 'a worker taking the job');
    await kill9(holder!);
    await startChild(holder!.name, 'worker');
    await until(() => deliveredEvents(id).length >= 1, 'the delivered event', 90_000);
    // Every process's dispatcher has gone idle (nothing pending) before counting.
    await until(async () => {
      const { RedisOutbox } = await import('../../src/webhooks/redis-outbox.js');
      const outbox = await RedisOutbox.open(redis.url);
      try {
        return (await outbox.oldestPendingAt()) === undefined;
      } finally {
        await outbox.close();
      }
    }, 'no webhook pending');
    expect(deliveredEvents(id)).toHaveLength(1);
    expect(emulator.store.list().filter((r) => r.metadata.pbxCallId === 'dist-kill')).toHaveLength(1);
  }, 150_000);
});
