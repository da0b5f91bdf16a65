/**
 * The webhook sink and its dispatcher, with both outboxes (the file one under
 * a spool folder, and Redis on a private redis-server), a real receiver on
 * loopback that verifies every signature with the `standardwebhooks` package,
 * and job events constructed as the job-life module makes them.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isTempName } from '../../src/delivery/durable.js';
import { JOB_EVENT_TYPES } from '../../src/delivery/job-events.js';
import { createLogger } from '../../src/logger.js';
import { GatewayMetrics } from '../../src/metrics.js';
import { webhookEventSchema } from '../../src/webhooks/api-schemas.js';
import { FileOutbox } from '../../src/webhooks/file-outbox.js';
import type { WebhookOutbox } from '../../src/webhooks/outbox.js';
import { RedisOutbox } from '../../src/webhooks/redis-outbox.js';
import type { Resolver } from '../../src/webhooks/sender.js';
import { WebhookService } from '../../src/webhooks/service.js';
import { DEFAULT_WEBHOOK_SETTINGS, parseWebhooks, type WebhookSettings } from '../../src/webhooks/settings.js';
import { redisUnavailable, TestRedis } from '../helpers/redis.js';
import { CALLER_AUTHORIZATION, IMAGICLE_URL, jobEvent, jobFor } from '../helpers/webhook-job.js';
import { newSecret, until, WebhookReceiver } from '../helpers/webhook-receiver.js';

const OWNER_KEY = 'key:0123abcd4567';
const logger = createLogger('silent');
const redisSkip = redisUnavailable();

interface Harness {
  service: WebhookService;
  outbox: WebhookOutbox;
  metrics: GatewayMetrics;
}

type StoreKind = 'file' | 'redis';

let redis: TestRedis | undefined;
let prefixCounter = 0;
const roots: string[] = [];
const running: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  if (!redisSkip) redis = await TestRedis.start();
});
afterAll(async () => {
  await redis?.stop();
  for (const root of roots) await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

async function openOutbox(kind: StoreKind): Promise<WebhookOutbox> {
  if (kind === 'redis') return RedisOutbox.open(redis!.url, `test-${process.pid}-${++prefixCounter}:`);
  const root = await mkdtemp(path.join(os.tmpdir(), 'webhooks-'));
  roots.push(root);
  return FileOutbox.open(path.join(root, 'spool', 'webhooks'));
}

function settingsFor(endpoints: object[], extra: Partial<WebhookSettings> = {}): WebhookSettings {
  return {
    ...DEFAULT_WEBHOOK_SETTINGS,
    owners: parseWebhooks(JSON.stringify({ [OWNER_KEY]: endpoints }), 'WEBHOOKS').owners,
    minDelayMs: 100,
    maxDelayMs: 400,
    timeoutMs: 2000,
    ...extra,
  };
}

async function harness(
  kind: StoreKind,
  settings: WebhookSettings,
  options: { outbox?: WebhookOutbox; resolve?: Resolver } = {},
): Promise<Harness> {
  const outbox = options.outbox ?? (await openOutbox(kind));
  const metrics = new GatewayMetrics();
  const service = new WebhookService({
    settings,
    outbox,
    logger,
    imagicleUrl: IMAGICLE_URL,
    metrics,
    resolve: options.resolve,
    pollMs: 100,
  });
  metrics.watch({ webhooks: service });
  service.start();
  running.push(service);
  return { service, outbox, metrics };
}

async function receiver(secrets: string[]): Promise<WebhookReceiver> {
  const r = new WebhookReceiver(secrets);
  await r.start();
  running.push({ close: () => r.stop() });
  return r;
}

describe.each(['file', 'redis'] as const)('webhooks with the %s outbox', (kind) => {
  const skip = kind === 'redis' ? redisSkip : undefined;

  it.skipIf(skip)('sends each event, signed (Standard Webhooks), with the outcome and nothing secret', async () => {
    const secret = newSecret();
    const rx = await receiver([secret]);
    const { service, outbox } = await harness(
      kind,
      settingsFor([{ url: rx.url, secret, retrying: true, allowPrivate: true }]),
    );
    const sent = [];
    for (const type of JOB_EVENT_TYPES) {
      const job = jobFor(type);
      const event = jobEvent(type);
      await service.publish(job, [event]);
      sent.push({ job, event });
    }
    await until(() => rx.received.length === JOB_EVENT_TYPES.length, 'every event');
    for (const { job, event } of sent) {
      const got = rx.received.find((r) => r.id === event.id);
      expect(got, event.type).toBeDefined();
      expect(got!.verifiedWith).toBe(0);
      const body = got!.verified as { type: string; timestamp: string; data: Record<string, unknown> };
      // What /openapi.json says a webhook body is (strict: nothing more is sent).
      webhookEventSchema.strict().parse(body);
      expect(body.type).toBe(event.type);
      expect(body.timestamp).toBe(event.at);
      expect(body.data.jobId).toBe(job.id);
      expect(body.data.pbxCallId).toBe('call-42');
      expect(body.data.owner).toBe(OWNER_KEY);
      expect(body.data.links).toEqual({ job: `/v1/jobs/${job.id}` });
      expect(body.data.decision).toEqual({ action: 'transcode', reasons: ['codec pcm_s24le is not accepted'] });
      const parts = body.data.parts as { part: number; imagicleId: unknown; duration: string; bytes: number }[];
      expect(parts.map((p) => [p.part, p.duration, p.bytes])).toEqual([
        [1, 'PT10S', 160_044],
        [2, 'PT10S', 160_044],
      ]);
      expect(parts[0]!.imagicleId).toBe('rec-1');
      if (event.type === 'recording.delivered') {
        expect(parts[1]!.imagicleId).toBe('rec-2');
        expect(body.data.error).toBeNull();
      } else {
        expect(parts[1]!.imagicleId).toBeNull();
        expect(body.data.error).toMatchObject({ part: 2, ambiguous: event.type === 'recording.held' });
      }
      // Nothing secret, no audio, not Imagicle's address: not in the body, not in any header.
      const everything = JSON.stringify({ body: got!.body, headers: got!.headers });
      for (const secretText of [
        secret,
        secret.slice(6),
        CALLER_AUTHORIZATION,
        CALLER_AUTHORIZATION.slice(6),
        'ucx-secret.example.internal',
        IMAGICLE_URL,
        '+auth:',
        'giuliano',
        'input.wav',
        'part-1.wav',
        'ab'.repeat(32),
      ]) {
        expect(everything, secretText).not.toContain(secretText);
      }
      // Imagicle's address in an error message or answer is replaced, not dropped with the rest of the text.
      if (event.type !== 'recording.delivered') expect(got!.body).toContain('Imagicle at [imagicle] answered badly');
    }
    const deliveries = await outbox.forJob(sent[0]!.job.id);
    expect(deliveries.map((d) => [d.state, d.attempts, d.lastStatus])).toEqual([['sent', 1, 204]]);
  });

  it.skipIf(skip)('publishing an event again (a re-publish after a crash) sends it once', async () => {
    const secret = newSecret();
    const rx = await receiver([secret]);
    const { service, outbox } = await harness(kind, settingsFor([{ url: rx.url, secret, allowPrivate: true }]));
    const job = jobFor('recording.delivered');
    const event = jobEvent('recording.delivered');
    await Promise.all([service.publish(job, [event]), service.publish(job, [event])]);
    await until(async () => (await outbox.forJob(job.id))[0]?.state === 'sent', 'the delivery sent');
    await service.publish(job, [event]);
    expect(await outbox.forJob(job.id)).toHaveLength(1);
    expect(rx.received.map((r) => r.id)).toEqual([event.id]);
  });

  it.skipIf(skip)(
    'signs with every secret during a rotation: receivers with the old or the new one verify',
    async () => {
      const [oldSecret, newer] = [newSecret(), newSecret()];
      const oldReceiver = await receiver([oldSecret]);
      const newReceiver = await receiver([newer]);
      const { service } = await harness(
        kind,
        settingsFor([
          { url: oldReceiver.url, secrets: [oldSecret, newer], allowPrivate: true },
          { url: newReceiver.url, secrets: [oldSecret, newer], allowPrivate: true },
        ]),
      );
      const event = jobEvent('recording.delivered');
      await service.publish(jobFor('recording.delivered'), [event]);
      await until(() => oldReceiver.received.length === 1 && newReceiver.received.length === 1, 'both receivers');
      for (const r of [...oldReceiver.received, ...newReceiver.received]) {
        expect(r.id).toBe(event.id);
        expect(r.signature.split(' ')).toHaveLength(2);
        expect(r.verified).toBeDefined();
      }
      expect(oldReceiver.received[0]!.verifiedWith).toBe(0);
      expect(newReceiver.received[0]!.verifiedWith).toBe(0);
    },
  );

  it.skipIf(skip)('retries a 500 with the same webhook-id and body; stops at a 410', async () => {
    const secret = newSecret();
    const flaky = await receiver([secret]);
    flaky.answer = (n) => (n < 2 ? 500 : 200);
    const gone = await receiver([secret]);
    gone.answer = () => 410;
    const { service, outbox } = await harness(
      kind,
      settingsFor([
        { url: flaky.url, secret, allowPrivate: true },
        { url: gone.url, secret, allowPrivate: true },
      ]),
    );
    const job = jobFor('recording.failed');
    const event = jobEvent('recording.failed');
    await service.publish(job, [event]);
    await until(async () => (await outbox.forJob(job.id)).every((d) => d.state !== 'pending'), 'both settled');
    expect(flaky.received.map((r) => r.id)).toEqual([event.id, event.id, event.id]);
    expect(new Set(flaky.received.map((r) => r.body)).size).toBe(1);
    const byHost = Object.fromEntries(
      (await service.deliveriesFor(job.id, { id: job.owner!, admin: false })).map((d) => [d.endpoint, d]),
    );
    expect(byHost[new URL(flaky.url).host]).toMatchObject({ state: 'sent', attempts: 3, lastStatus: 200 });
    expect(byHost[new URL(gone.url).host]).toMatchObject({ state: 'gone', attempts: 1, lastStatus: 410 });
    expect(byHost[new URL(gone.url).host]!.nextAttemptAt).toBeUndefined();
    expect(await outbox.claimDue(Date.now() + 3_600_000, 10, 1000)).toEqual([]);
    expect(gone.received).toHaveLength(1);
    // Another owner sees none of them; an operator sees all.
    expect(await service.deliveriesFor(job.id, { id: 'key:ffffffffffff', admin: false })).toEqual([]);
    expect(await service.deliveriesFor(job.id, { id: 'key:ffffffffffff', admin: true })).toHaveLength(2);
  });

  it.skipIf(skip)('gives up after WEBHOOK_MAX_AGE (failed, counted), and a re-send delivers it', async () => {
    const secret = newSecret();
    const rx = await receiver([secret]);
    rx.answer = () => 503;
    const { service, outbox, metrics } = await harness(
      kind,
      settingsFor([{ url: rx.url, secret, allowPrivate: true }], { maxAgeMs: 1000 }),
    );
    const job = jobFor('recording.held');
    await service.publish(job, [jobEvent('recording.held')]);
    await until(async () => (await outbox.forJob(job.id))[0]?.state === 'failed', 'the delivery failed');
    const [failed] = await outbox.forJob(job.id);
    expect(failed!.attempts).toBeGreaterThanOrEqual(2);
    expect(failed!.lastError).toMatch(/not acknowledged before .*HTTP 503/);
    expect(await metrics.expose()).toMatch(/webhooks_failed_total\{event="recording.held"\} 1/);
    expect(await metrics.expose()).toMatch(/webhooks_sent_total\{event="recording.held",outcome="http-error"\} \d/);

    rx.answer = () => 200;
    const owner = { id: job.owner!, admin: false };
    await expect(service.resend(failed!.id, { id: 'key:ffffffffffff', admin: false })).rejects.toThrow(/No webhook/);
    const view = await service.resend(failed!.id, owner);
    expect(view.state).toBe('pending');
    await until(async () => (await outbox.get(failed!.id))?.state === 'sent', 'the re-sent delivery');
    await expect(service.resend(failed!.id, owner)).rejects.toThrow(/acknowledged already/);
    expect(new Set(rx.received.map((r) => r.id)).size).toBe(1);
  });

  it.skipIf(skip)("sends to the job's callbackUrl, signed with the owner's callback secret", async () => {
    const [endpointSecret, callbackSecret] = [newSecret(), newSecret()];
    const endpoint = await receiver([endpointSecret]);
    const callback = await receiver([callbackSecret]);
    const settings: WebhookSettings = {
      ...settingsFor([]),
      owners: parseWebhooks(
        JSON.stringify({
          [OWNER_KEY]: {
            endpoints: [{ url: endpoint.url, secret: endpointSecret, retrying: true, allowPrivate: true }],
            callback: { secret: callbackSecret },
          },
        }),
        'WEBHOOKS',
      ).owners,
      // A caller's URL gets no allowPrivate: loopback must be listed to be reachable.
      privateNetworks: ['127.0.0.1/32'],
    };
    const { service, outbox } = await harness(kind, settings);
    const job = jobFor('recording.delivered', { callbackUrl: callback.url });
    const delivered = jobEvent('recording.delivered');
    const retrying = jobEvent('recording.retrying');
    await service.publish(job, [retrying, delivered]);
    // The callbackUrl is also a configured endpoint: one delivery, not two.
    const same = jobFor('recording.delivered', { callbackUrl: endpoint.url });
    const sameEvent = jobEvent('recording.delivered');
    await service.publish(same, [sameEvent]);
    await until(async () => (await outbox.forJob(job.id)).every((d) => d.state === 'sent'), 'sent');
    await until(async () => (await outbox.forJob(same.id)).every((d) => d.state === 'sent'), 'sent');
    expect(callback.received.map((r) => [r.id, r.verifiedWith])).toEqual([[delivered.id, 0]]);
    expect(endpoint.received.map((r) => r.id).sort()).toEqual([delivered.id, retrying.id, sameEvent.id].sort());
    expect((await outbox.forJob(job.id)).map((d) => d.kind).sort()).toEqual(['callback', 'configured', 'configured']);
    expect((await outbox.forJob(same.id)).map((d) => d.kind)).toEqual(['configured']);
  });

  it.skipIf(skip)(
    'refuses loopback unless allowed: an IP literal, a name resolving to it, a rebinding name',
    async () => {
      const secret = newSecret();
      const rx = await receiver([secret]);
      const port = new URL(rx.url).port;
      // A name that resolves to a public address when first asked, to loopback afterwards (DNS rebinding).
      let asked = 0;
      const rebinding: Resolver = async (hostname) => {
        if (hostname !== 'rebind.example.com') throw Object.assign(new Error('unknown'), { code: 'ENOTFOUND' });
        return [{ address: asked++ === 0 ? '93.184.215.14' : '127.0.0.1', family: 4 }];
      };
      const systemLookup = (await import('../../src/webhooks/sender.js')).systemResolver;
      const { service, outbox } = await harness(
        kind,
        settingsFor([
          { url: `http://127.0.0.1:${port}/literal`, secret },
          { url: `http://[::ffff:127.0.0.1]:${port}/mapped`, secret },
          { url: `http://localhost:${port}/name`, secret },
        ]),
        { resolve: (h) => (h === 'rebind.example.com' ? rebinding(h) : systemLookup(h)) },
      );
      const job = jobFor('recording.delivered');
      // The first look (as the intake would do) sees a public address; the connection sees loopback.
      expect(await rebinding('rebind.example.com')).toEqual([{ address: '93.184.215.14', family: 4 }]);
      const settings = settingsFor([{ url: `http://rebind.example.com:${port}/rebound`, secret }]);
      const rebound = await harness(kind, settings, { resolve: rebinding });
      await service.publish(job, [jobEvent('recording.delivered')]);
      await rebound.service.publish(job, [jobEvent('recording.delivered')]);
      await until(async () => {
        const all = [...(await outbox.forJob(job.id)), ...(await rebound.outbox.forJob(job.id))];
        return all.length === 4 && all.every((d) => d.state === 'failed');
      }, 'every delivery refused');
      const all = [...(await outbox.forJob(job.id)), ...(await rebound.outbox.forJob(job.id))];
      for (const d of all) expect(d.lastError).toMatch(/private, loopback|not an address webhooks may reach/);
      expect(all.find((d) => d.url.includes('rebind'))!.lastError).toMatch(
        /rebind\.example\.com resolves to 127\.0\.0\.1/,
      );
      expect(rx.received).toEqual([]);
    },
  );
});

describe('webhooks in the distributed mode (two dispatchers, one Redis outbox)', () => {
  it.skipIf(redisSkip)('sends each delivery exactly once, with a stable webhook-id', async () => {
    const secret = newSecret();
    const rx = await receiver([secret]);
    const prefix = `shared-${process.pid}:`;
    const settings = settingsFor([{ url: rx.url, secret, allowPrivate: true }], { concurrency: 4 });
    const a = await harness('redis', settings, { outbox: await RedisOutbox.open(redis!.url, prefix) });
    const b = await harness('redis', settings, { outbox: await RedisOutbox.open(redis!.url, prefix) });
    const events = Array.from({ length: 40 }, (_, i) => ({
      job: jobFor('recording.delivered'),
      event: jobEvent('recording.delivered'),
      publisher: i % 2 === 0 ? a : b,
    }));
    await Promise.all(events.map(({ job, event, publisher }) => publisher.service.publish(job, [event])));
    await until(() => rx.received.length >= events.length, 'every event');
    await until(async () => (await a.outbox.oldestPendingAt()) === undefined, 'nothing pending');
    expect(rx.received).toHaveLength(events.length);
    expect(new Set(rx.received.map((r) => r.id))).toEqual(new Set(events.map((e) => e.event.id)));
    expect(rx.received.every((r) => r.verified !== undefined)).toBe(true);
  });
});

describe('webhooks when the receiver is down, then back', () => {
  // CI-sized by default; WEBHOOK_OUTAGE_SECONDS=30 runs the realistic outage.
  const outageSeconds = Number(process.env.WEBHOOK_OUTAGE_SECONDS ?? 5);

  it.each(['file', ...(redisSkip ? [] : ['redis'])] as StoreKind[])(
    'delivers every event once it is back (%s outbox)',
    async (kind) => {
      const secret = newSecret();
      const rx = await receiver([secret]);
      await rx.stop();
      const { service, outbox, metrics } = await harness(
        kind,
        settingsFor([{ url: rx.url, secret, retrying: true, allowPrivate: true }], {
          minDelayMs: 250,
          maxDelayMs: 2000,
          concurrency: 4,
        }),
      );
      const jobs = JOB_EVENT_TYPES.flatMap((type) => Array.from({ length: 5 }, () => ({ type, job: jobFor(type) })));
      const started = Date.now();
      for (const { type, job } of jobs) await service.publish(job, [jobEvent(type)]);
      await new Promise((resolve) => setTimeout(resolve, outageSeconds * 1000));
      const pendingDuringOutage = (await Promise.all(jobs.map(({ job }) => outbox.forJob(job.id)))).flat();
      expect(pendingDuringOutage.every((d) => d.state === 'pending')).toBe(true);
      const attemptsDuringOutage = pendingDuringOutage.reduce((sum, d) => sum + d.attempts, 0);
      const oldest = /^imagicle_gateway_webhook_oldest_pending_age_seconds (\S+)$/m.exec(await metrics.expose())?.[1];
      expect(Number(oldest)).toBeGreaterThan(0);

      await rx.start();
      const back = Date.now();
      await until(() => rx.uniqueVerified().length === jobs.length, 'every event after the outage', 60_000);
      const lastArrival = Math.max(...rx.received.map((r) => r.at));
      const deliveries = (await Promise.all(jobs.map(({ job }) => outbox.forJob(job.id)))).flat();
      await until(
        async () =>
          (await Promise.all(jobs.map(({ job }) => outbox.forJob(job.id)))).flat().every((d) => d.state === 'sent'),
        'every delivery recorded as sent',
      );
      const attempts = (await Promise.all(jobs.map(({ job }) => outbox.forJob(job.id))))
        .flat()
        .reduce((sum, d) => sum + d.attempts, 0);
      expect(rx.received).toHaveLength(jobs.length);
      expect(deliveries).toHaveLength(jobs.length);
      console.log(
        `[webhook outage, ${kind}] outage ${outageSeconds} s; events ${jobs.length}; attempts ${attempts} ` +
          `(${attemptsDuringOutage} refused during the outage); delivered ${rx.uniqueVerified().length}; ` +
          `all delivered ${lastArrival - back} ms after the receiver came back ` +
          `(${lastArrival - started} ms after the first publish)`,
      );
    },
    (outageSeconds + 90) * 1000,
  );
});

describe('the file outbox on disk', () => {
  it('keeps one durable file per delivery, and nothing else', async () => {
    const secret = newSecret();
    const rx = await receiver([secret]);
    rx.answer = () => 500;
    const outbox = (await openOutbox('file')) as FileOutbox;
    const { service } = await harness('file', settingsFor([{ url: rx.url, secret, allowPrivate: true }]), { outbox });
    const job = jobFor('recording.delivered');
    const event = jobEvent('recording.delivered');
    await service.publish(job, [event]);
    // (A temp file of the first attempt's write may be there for a moment; it is never read as a delivery.)
    const files = (await readdir(outbox.dir)).filter((name) => !isTempName(name));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^${event.id}\\.[0-9a-f]{16}\\.json$`));
    await until(() => rx.received.length >= 2, 'a retry');
    const reopened = await FileOutbox.open(outbox.dir);
    const [kept] = await reopened.forJob(job.id);
    expect(kept).toMatchObject({ eventId: event.id, state: 'pending', url: rx.url });
    expect(kept!.attempts).toBeGreaterThanOrEqual(1);
  });
});
