/**
 * kill -9 of a process with a webhook pending (its receiver down): after a
 * restart on the same outbox folder the webhook is sent, under the same
 * webhook-id, and verifies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { isTempName } from '../../src/delivery/durable.js';
import type { WebhookDelivery } from '../../src/webhooks/delivery.js';
import { DEFAULT_WEBHOOK_SETTINGS, parseWebhooks, type WebhookSettings } from '../../src/webhooks/settings.js';
import { jobEvent, jobFor } from '../helpers/webhook-job.js';
import { newSecret, until, WebhookReceiver } from '../helpers/webhook-receiver.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const children: ChildProcess[] = [];
const roots: string[] = [];

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function startChild(input: object): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/webhook-child.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, WEBHOOK_CHILD: JSON.stringify(input) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the child did not start: ${lines.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line === 'published') {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the child exited with ${code}: ${lines.join('\n')}`)));
  });
  return { child, lines };
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function onDisk(dir: string): Promise<WebhookDelivery[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json') && !isTempName(n));
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(dir, n), 'utf8')) as WebhookDelivery));
}

describe('kill -9 with a webhook pending', () => {
  it('sends it after the restart, same webhook-id', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'webhook-crash-'));
    roots.push(root);
    const dir = path.join(root, 'spool', 'webhooks');
    const secret = newSecret();
    const receiver = new WebhookReceiver([secret]);
    await receiver.start();
    await receiver.stop();
    const settings: WebhookSettings = {
      ...DEFAULT_WEBHOOK_SETTINGS,
      owners: parseWebhooks(JSON.stringify({ '*': [{ url: receiver.url, secret, allowPrivate: true }] }), 'WEBHOOKS')
        .owners,
      minDelayMs: 200,
      maxDelayMs: 500,
      timeoutMs: 2000,
    };
    const job = jobFor('recording.delivered');
    const event = jobEvent('recording.delivered');

    const first = await startChild({ dir, settings, publish: { job, events: [event] } });
    // It tried at least once (refused: the receiver is down), and the delivery is still pending.
    await until(async () => ((await onDisk(dir))[0]?.attempts ?? 0) >= 1, 'a first attempt');
    await kill9(first.child);
    const [pending] = await onDisk(dir);
    expect(pending).toMatchObject({ eventId: event.id, state: 'pending', jobId: job.id });

    await receiver.start();
    try {
      const second = await startChild({ dir, settings });
      await until(() => receiver.received.length >= 1, 'the webhook after the restart');
      await until(async () => (await onDisk(dir))[0]?.state === 'sent', 'the delivery recorded as sent');
      second.child.kill('SIGTERM');
      expect(receiver.received.map((r) => r.id)).toEqual([event.id]);
      expect(receiver.received[0]!.verified).toMatchObject({ type: 'recording.delivered', data: { jobId: job.id } });
      const [sent] = await onDisk(dir);
      expect(sent!.attempts).toBeGreaterThan(pending!.attempts);
    } finally {
      await receiver.stop();
    }
  }, 90_000);
});
