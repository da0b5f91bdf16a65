/**
 * Webhooks as a JobEventSink: the job-life module hands over each job's new
 * events after the write that recorded them; each becomes one delivery per
 * endpoint that wants it (the owner's WEBHOOKS entry, else "*", plus the
 * job's own callbackUrl), written to the outbox, then sent by the dispatcher.
 * publish() is idempotent on the event's id: a re-publish after a crash adds
 * nothing that is already there.
 */
import { randomUUID } from 'node:crypto';
import type { BlockList } from 'node:net';
import type { JobEvent } from '../delivery/job-events.js';
import type { JobEventSink } from '../delivery/job-event-sink.js';
import type { JobRecord } from '../delivery/job.js';
import { GatewayError } from '../errors.js';
import type { Owner } from '../http/owner.js';
import { mayAccess } from '../http/owner.js';
import type { Logger } from '../logger.js';
import { networksOf } from './address.js';
import type { CallbackPolicy } from './callback.js';
import { deliveryIdOf, deliveryView, type DeliveryView, type TargetKind, type WebhookDelivery } from './delivery.js';
import { WebhookDispatcher, type Target, type WebhookMetricsSink } from './dispatcher.js';
import type { WebhookOutbox } from './outbox.js';
import { eventBody, pingBody, redactionsFor, type PayloadOptions } from './payload.js';
import { systemResolver, WebhookSender, type Resolver } from './sender.js';
import { webhooksFor, type WebhookSettings } from './settings.js';

export interface WebhookServiceDeps {
  settings: WebhookSettings;
  outbox: WebhookOutbox;
  logger: Logger;
  /** IMAGICLE_URL: never to appear in a body. */
  imagicleUrl: string | undefined;
  metrics?: WebhookMetricsSink | undefined;
  /** Name resolution for the address checks (default: the system's). */
  resolve?: Resolver | undefined;
  /** Longest sleep of the dispatcher between looks at the outbox. */
  pollMs?: number | undefined;
}

export interface PingResult {
  endpoint: string;
  webhookId: string;
  ok: boolean;
  status: number | undefined;
  error: string | undefined;
}

/** How often sent and failed deliveries older than WEBHOOK_HISTORY are forgotten. */
const PRUNE_EVERY_MS = 3_600_000;

export class WebhookService implements JobEventSink {
  readonly callbackPolicy: CallbackPolicy;
  private readonly sender: WebhookSender;
  private readonly dispatcher: WebhookDispatcher;
  private readonly payload: PayloadOptions;
  private readonly privateNetworks: BlockList;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: WebhookServiceDeps) {
    const { settings } = deps;
    this.privateNetworks = networksOf(settings.privateNetworks).list;
    const resolve = deps.resolve ?? systemResolver;
    this.sender = new WebhookSender({ timeoutMs: settings.timeoutMs, privateNetworks: this.privateNetworks, resolve });
    this.callbackPolicy = { settings, privateNetworks: this.privateNetworks, resolve };
    this.payload = { publicUrl: settings.publicUrl, redact: redactionsFor(deps.imagicleUrl) };
    this.dispatcher = new WebhookDispatcher(
      deps.outbox,
      this.sender,
      (d) => this.targetOf(d),
      {
        concurrency: settings.concurrency,
        timeoutMs: settings.timeoutMs,
        minDelayMs: settings.minDelayMs,
        maxDelayMs: settings.maxDelayMs,
        pollMs: deps.pollMs,
      },
      deps.logger.child({ component: 'webhooks' }),
      deps.metrics,
    );
  }

  get outbox(): WebhookOutbox {
    return this.deps.outbox;
  }

  start(): void {
    this.dispatcher.start();
    const prune = (): void => {
      this.deps.outbox
        .prune(Date.now() - this.deps.settings.historyMs)
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'webhooks: pruning the outbox failed'));
    };
    prune();
    this.pruneTimer = setInterval(prune, PRUNE_EVERY_MS).unref();
  }

  /** Stops sending (attempts under way finish and are recorded), closes connections and the outbox. */
  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    await this.dispatcher.stop();
    await this.sender.close();
    await this.deps.outbox.close();
  }

  /** The deliveries an event of a job makes: one per endpoint that wants it. */
  deliveriesOf(job: Readonly<JobRecord>, event: JobEvent, now = Date.now()): WebhookDelivery[] {
    const hooks = webhooksFor(this.deps.settings, job.owner);
    if (!hooks) return [];
    const targets: { kind: TargetKind; url: string }[] = hooks.endpoints
      .filter((e) => e.events.includes(event.type))
      .map((e) => ({ kind: 'configured', url: e.url }));
    const callback = job.callbackUrl;
    if (callback && hooks.callback?.events.includes(event.type) && !targets.some((t) => t.url === callback)) {
      targets.push({ kind: 'callback', url: callback });
    }
    if (targets.length === 0) return [];
    const body = eventBody(job, event, this.payload);
    const at = new Date(now).toISOString();
    return targets.map(({ kind, url }) => ({
      version: 1,
      id: deliveryIdOf(event.id, kind, url),
      eventId: event.id,
      event: event.type,
      jobId: job.id,
      owner: job.owner,
      kind,
      url,
      body,
      state: 'pending',
      attempts: 0,
      createdAt: at,
      updatedAt: at,
      expiresAt: new Date(now + this.deps.settings.maxAgeMs).toISOString(),
      nextAttemptAt: at,
      lastStatus: undefined,
      lastError: undefined,
      lastAttemptAt: undefined,
      sentAt: undefined,
    }));
  }

  /** JobEventSink: records each event's deliveries in the outbox (durably), then wakes the dispatcher. */
  async publish(job: Readonly<JobRecord>, events: readonly JobEvent[]): Promise<void> {
    const deliveries = events.flatMap((event) => this.deliveriesOf(job, event));
    if (deliveries.length === 0) return;
    try {
      await this.deps.outbox.add(deliveries);
      this.dispatcher.wake();
    } catch (error) {
      // The job's write is done and must not be undone for a webhook: the dispatcher writes these again.
      this.deps.logger.error({ err: error, jobId: job.id }, 'webhooks: the outbox could not take new deliveries');
      this.dispatcher.retryAdd(deliveries);
    }
  }

  private targetOf(d: WebhookDelivery): Target {
    const hooks = webhooksFor(this.deps.settings, d.owner);
    if (d.kind === 'callback') {
      return hooks?.callback
        ? { secrets: hooks.callback.secrets, allowPrivate: false }
        : { problem: 'callbacks are no longer enabled for this key' };
    }
    const endpoint = hooks?.endpoints.find((e) => e.url === d.url);
    return endpoint
      ? { secrets: endpoint.secrets, allowPrivate: endpoint.allowPrivate }
      : { problem: 'the endpoint is no longer configured in WEBHOOKS' };
  }

  /** A job's deliveries as the jobs API shows them (the endpoint's host only), for an owner who may see them. */
  async deliveriesFor(jobId: string, owner: Owner): Promise<DeliveryView[]> {
    const all = await this.deps.outbox.forJob(jobId);
    return all.filter((d) => mayAccess(owner, d.owner)).map(deliveryView);
  }

  /** Sends a failed (or gone) delivery again, with a fresh WEBHOOK_MAX_AGE; same webhook-id and body. */
  async resend(id: string, owner: Owner): Promise<DeliveryView> {
    const d = await this.deps.outbox.get(id);
    if (!d || !mayAccess(owner, d.owner)) throw new GatewayError('NOT_FOUND', `No webhook delivery ${id}`);
    if (d.state === 'pending') throw new GatewayError('CONFLICT', `Webhook delivery ${id} is still being tried`);
    if (d.state === 'sent') throw new GatewayError('CONFLICT', `Webhook delivery ${id} was acknowledged already`);
    const now = Date.now();
    const again: WebhookDelivery = {
      ...d,
      state: 'pending',
      nextAttemptAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.deps.settings.maxAgeMs).toISOString(),
      updatedAt: new Date(now).toISOString(),
    };
    await this.deps.outbox.save(again);
    this.dispatcher.wake();
    return deliveryView(again);
  }

  /** POST /v1/webhooks/test: a signed `ping` to each endpoint of the owner, once, answered with each outcome. */
  async ping(owner: Owner): Promise<PingResult[]> {
    const endpoints = webhooksFor(this.deps.settings, owner.id)?.endpoints ?? [];
    if (endpoints.length === 0) {
      throw new GatewayError('NOT_FOUND', 'No webhook endpoints are configured for this key (WEBHOOKS)');
    }
    const body = pingBody(owner.id, new Date().toISOString());
    return Promise.all(
      endpoints.map(async (e) => {
        const webhookId = `msg_ping_${randomUUID()}`;
        const result = await this.sender.send({
          url: e.url,
          id: webhookId,
          body,
          secrets: e.secrets,
          allowPrivate: e.allowPrivate,
        });
        return {
          endpoint: new URL(e.url).host,
          webhookId,
          ok: result.kind === 'answered' && result.status >= 200 && result.status < 300,
          status: result.kind === 'answered' ? result.status : undefined,
          error: result.kind === 'error' ? result.message : undefined,
        };
      }),
    );
  }

  oldestPendingAt(): Promise<number | undefined> {
    return this.deps.outbox.oldestPendingAt();
  }
}
